/**
 * kstatus's type-specific rules for built-in kinds whose controllers do not
 * publish the standard Reconciling/Stalled conditions. Each rule runs only
 * after the generic rules (deletion, observedGeneration, Reconciling/Stalled)
 * left the decision open.
 */
import { conditionsOf, findCondition, intField, intOr, stringOr, type Unstructured } from "./fields.js";
import { groupOf } from "./refs.js";
import { current, failed, inProgress, type StatusResult } from "./status.js";

type Rule = (obj: Unstructured, now: number) => StatusResult;

/** How long a Pod may stay unscheduled before it counts as Failed. */
export const POD_SCHEDULE_WINDOW_MS = 15_000;

/** The Deployment controller's "no progress deadline" sentinel (math.MaxInt32). */
const NO_PROGRESS_DEADLINE = 2_147_483_647;

const alwaysReady: Rule = () => current("Resource is always ready");

/** Keyed by `group/Kind`, or `Kind` for the core group. */
const RULES: ReadonlyMap<string, Rule> = new Map<string, Rule>([
  ["Service", serviceStatus],
  ["Pod", podStatus],
  ["Secret", alwaysReady],
  ["ConfigMap", alwaysReady],
  ["PersistentVolumeClaim", pvcStatus],
  ["apps/StatefulSet", statefulSetStatus],
  ["apps/DaemonSet", daemonSetStatus],
  ["extensions/DaemonSet", daemonSetStatus],
  ["apps/Deployment", deploymentStatus],
  ["extensions/Deployment", deploymentStatus],
  ["apps/ReplicaSet", replicaSetStatus],
  ["extensions/ReplicaSet", replicaSetStatus],
  ["policy/PodDisruptionBudget", () => current("AllowedDisruptions has been computed.")],
  ["batch/CronJob", alwaysReady],
  ["batch/Job", jobStatus],
  ["apiextensions.k8s.io/CustomResourceDefinition", crdStatus],
]);

export function builtinRuleFor(obj: Unstructured): Rule | undefined {
  const apiVersion = typeof obj.apiVersion === "string" ? obj.apiVersion : "";
  const kind = typeof obj.kind === "string" ? obj.kind : "";
  const group = groupOf(apiVersion);
  return RULES.get(group === "" ? kind : `${group}/${kind}`);
}

function deploymentStatus(obj: Unstructured): StatusResult {
  // Without a progress deadline the controller never reports progress, so
  // "progressing" cannot be waited for.
  let progressing = intOr(obj, ["spec", "progressDeadlineSeconds"], NO_PROGRESS_DEADLINE) === NO_PROGRESS_DEADLINE;
  let available = false;
  for (const c of conditionsOf(obj)) {
    if (c.type === "Progressing") {
      if (c.reason === "ProgressDeadlineExceeded") {
        return failed("ProgressDeadlineExceeded", c.message ? `Progress deadline exceeded: ${c.message}` : "Progress deadline exceeded");
      }
      if (c.status === "True" && c.reason === "NewReplicaSetAvailable") progressing = true;
    } else if (c.type === "Available" && c.status === "True") {
      available = true;
    }
  }

  const wanted = intOr(obj, ["spec", "replicas"], 1);
  const replicas = intOr(obj, ["status", "replicas"], 0);
  const updated = intOr(obj, ["status", "updatedReplicas"], 0);
  const ready = intOr(obj, ["status", "readyReplicas"], 0);
  const availableReplicas = intOr(obj, ["status", "availableReplicas"], 0);

  if (wanted > replicas) return inProgress("LessReplicas", `Replicas: ${replicas}/${wanted}`);
  if (wanted > updated) return inProgress("LessUpdated", `Updated: ${updated}/${wanted}`);
  if (replicas > wanted) return inProgress("ExtraPods", `Pending termination: ${replicas - wanted}`);
  if (updated > availableReplicas) return inProgress("LessAvailable", `Available: ${availableReplicas}/${updated}`);
  if (wanted > ready) return inProgress("LessReady", `Ready: ${ready}/${wanted}`);
  if (!progressing) return inProgress("ReplicaSetNotAvailable", "ReplicaSet not Available");
  if (!available) return inProgress("DeploymentNotAvailable", "Deployment not Available");
  return current(`Deployment is available. Replicas: ${replicas}`);
}

/** StatefulSets publish no conditions; only the replica counters and revisions tell. */
function statefulSetStatus(obj: Unstructured): StatusResult {
  if (stringOr(obj, ["spec", "updateStrategy", "type"], "") === "OnDelete") {
    return current("StatefulSet is using the ondelete update strategy");
  }

  const wanted = intOr(obj, ["spec", "replicas"], 1);
  const replicas = intOr(obj, ["status", "replicas"], 0);
  const ready = intOr(obj, ["status", "readyReplicas"], 0);
  const currentReplicas = intOr(obj, ["status", "currentReplicas"], 0);
  const updated = intOr(obj, ["status", "updatedReplicas"], 0);
  const partition = intField(obj, ["spec", "updateStrategy", "rollingUpdate", "partition"]);

  if (wanted > replicas) return inProgress("LessReplicas", `Replicas: ${replicas}/${wanted}`);
  if (wanted > ready) return inProgress("LessReady", `Ready: ${ready}/${wanted}`);
  if (replicas > wanted) return inProgress("ExtraPods", `Pending termination: ${replicas - wanted}`);

  // A partitioned rollout is done once every ordinal at or above the partition is updated.
  if (partition !== undefined) {
    const expected = wanted - partition;
    if (updated < expected) return inProgress("PartitionRollout", `updated: ${updated}/${expected}`);
    return current(`Partition rollout complete. updated: ${updated}`);
  }

  if (wanted > currentReplicas) return inProgress("LessCurrent", `current: ${currentReplicas}/${wanted}`);
  if (stringOr(obj, ["status", "currentRevision"], "") !== stringOr(obj, ["status", "updateRevision"], "")) {
    return inProgress("RevisionMismatch", "Waiting for updated revision to match current");
  }
  return current(`All replicas scheduled as expected. Replicas: ${replicas}`);
}

function daemonSetStatus(obj: Unstructured): StatusResult {
  // The generic rule skips objects without these fields; a DaemonSet the
  // controller has seen always has both, so their absence means "not yet seen".
  const kind = "DaemonSet";
  if (intField(obj, ["metadata", "generation"]) === undefined) {
    return inProgress("NoGeneration", `${kind} metadata.generation not found`);
  }
  if (intField(obj, ["status", "observedGeneration"]) === undefined) {
    return inProgress("NoObservedGeneration", `${kind} status.observedGeneration not found`);
  }

  const desired = intField(obj, ["status", "desiredNumberScheduled"]);
  if (desired === undefined) return inProgress("NoDesiredNumber", "Missing .status.desiredNumberScheduled");
  const scheduled = intOr(obj, ["status", "currentNumberScheduled"], 0);
  const updated = intOr(obj, ["status", "updatedNumberScheduled"], 0);
  const availableCount = intOr(obj, ["status", "numberAvailable"], 0);
  const ready = intOr(obj, ["status", "numberReady"], 0);

  if (desired > scheduled) return inProgress("LessCurrent", `Current: ${scheduled}/${desired}`);
  if (desired > updated) return inProgress("LessUpdated", `Updated: ${updated}/${desired}`);
  if (desired > availableCount) return inProgress("LessAvailable", `Available: ${availableCount}/${desired}`);
  if (desired > ready) return inProgress("LessReady", `Ready: ${ready}/${desired}`);
  return current(`All replicas scheduled as expected. Replicas: ${desired}`);
}

function replicaSetStatus(obj: Unstructured): StatusResult {
  if (findCondition(conditionsOf(obj), "ReplicaFailure", "True")) {
    return inProgress("ReplicaFailure", "Replica Failure condition. Check Pods");
  }
  const wanted = intOr(obj, ["spec", "replicas"], 1);
  const replicas = intOr(obj, ["status", "replicas"], 0);
  const ready = intOr(obj, ["status", "readyReplicas"], 0);
  const availableReplicas = intOr(obj, ["status", "availableReplicas"], 0);
  const labelled = intOr(obj, ["status", "fullyLabeledReplicas"], 0);

  if (wanted > labelled) return inProgress("LessLabelled", `Labelled: ${labelled}/${wanted}`);
  if (wanted > availableReplicas) return inProgress("LessAvailable", `Available: ${availableReplicas}/${wanted}`);
  if (wanted > ready) return inProgress("LessReady", `Ready: ${ready}/${wanted}`);
  if (replicas > wanted) return inProgress("ExtraPods", `Pending termination: ${replicas - wanted}`);
  return current(`ReplicaSet is available. Replicas: ${replicas}`);
}

function pvcStatus(obj: Unstructured): StatusResult {
  const phase = stringOr(obj, ["status", "phase"], "unknown");
  if (phase !== "Bound") return inProgress("NotBound", `PVC is not Bound. phase: ${phase}`);
  return current("PVC is Bound");
}

function podStatus(obj: Unstructured, now: number): StatusResult {
  const conditions = conditionsOf(obj);
  const phase = stringOr(obj, ["status", "phase"], "");
  switch (phase) {
    case "Succeeded":
      return current("Pod has completed successfully");
    case "Failed":
      // A finished Pod has reached its end state; kstatus does not wait on it.
      return current("Pod has completed, but not successfully");
    case "Running": {
      if (findCondition(conditions, "Ready", "True")) return current("Pod is Ready");
      const crashLooping = crashLoopingContainers(obj);
      if (crashLooping.length > 0) {
        return failed("ContainerCrashLooping", `Containers in CrashLoop state: ${crashLooping.join(",")}`);
      }
      return inProgress("PodRunningNotReady", "Pod is running but is not Ready");
    }
    case "Pending": {
      const scheduled = findCondition(conditions, "PodScheduled", "False");
      if (scheduled?.reason === "Unschedulable") {
        const created = Date.parse(stringOr(obj, ["metadata", "creationTimestamp"], ""));
        if (Number.isNaN(created) || now - POD_SCHEDULE_WINDOW_MS < created) {
          return inProgress("PodNotScheduled", "Pod has not been scheduled");
        }
        return failed("PodUnschedulable", scheduled.message ? `Pod could not be scheduled: ${scheduled.message}` : "Pod could not be scheduled");
      }
      return inProgress("PodPending", "Pod is in the Pending phase");
    }
    case "":
      return inProgress("PodNotObserved", "Pod phase not available");
    default:
      throw new Error(`unknown Pod phase ${phase}`);
  }
}

function crashLoopingContainers(obj: Unstructured): string[] {
  const statuses = (obj.status as { containerStatuses?: unknown } | undefined)?.containerStatuses;
  if (!Array.isArray(statuses)) return [];
  const names: string[] = [];
  for (const entry of statuses) {
    const cs = entry as { name?: unknown; state?: { waiting?: { reason?: unknown } } } | null;
    if (typeof cs?.name === "string" && cs.state?.waiting?.reason === "CrashLoopBackOff") names.push(cs.name);
  }
  return names;
}

/**
 * A Job counts as Current once it has started: kstatus readiness is about the
 * object being reconciled, not about the work finishing. Only an explicit
 * Failed condition is terminal.
 */
function jobStatus(obj: Unstructured): StatusResult {
  const parallelism = intOr(obj, ["spec", "parallelism"], 1);
  const completions = intOr(obj, ["spec", "completions"], parallelism);
  const succeeded = intOr(obj, ["status", "succeeded"], 0);
  const active = intOr(obj, ["status", "active"], 0);
  const failedPods = intOr(obj, ["status", "failed"], 0);

  for (const c of conditionsOf(obj)) {
    if (c.status !== "True") continue;
    if (c.type === "Complete") return current(`Job Completed. succeeded: ${succeeded}/${completions}`);
    if (c.type === "Failed") {
      const detail = c.message ? `: ${c.message}` : "";
      return failed("JobFailed", `Job Failed. failed: ${failedPods}/${completions}${detail}`);
    }
    if (c.type === "Suspended") return current("Job is suspended");
  }

  if (stringOr(obj, ["status", "startTime"], "") === "") return inProgress("JobNotStarted", "Job not started");
  return current(`Job in progress. success:${succeeded}, active: ${active}, failed: ${failedPods}`);
}

/**
 * kstatus waits only for a LoadBalancer Service to get its cluster IP, not for
 * an external address: clusters without a load-balancer provider never assign one.
 */
function serviceStatus(obj: Unstructured): StatusResult {
  const type = stringOr(obj, ["spec", "type"], "ClusterIP");
  if (type === "LoadBalancer" && stringOr(obj, ["spec", "clusterIP"], "") === "") {
    return inProgress("NoIPAssigned", "ClusterIP not set. Service type: LoadBalancer");
  }
  return current("Service is ready");
}

function crdStatus(obj: Unstructured): StatusResult {
  for (const c of conditionsOf(obj)) {
    if (c.type === "NamesAccepted" && c.status === "False") return failed(c.reason, c.message || "Names not accepted");
    if (c.type === "Established") {
      if (c.status === "False" && c.reason !== "Installing") return failed(c.reason, c.message || "Not established");
      if (c.status === "True") return current("CRD is established");
    }
  }
  return inProgress("Installing", "Install in progress");
}

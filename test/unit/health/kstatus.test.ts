import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { computeStatus, HealthStatus } from "../../../src/health/index.js";

type Obj = Record<string, unknown>;

interface Case {
  name: string;
  obj: Obj;
  status: HealthStatus;
  /** A substring the message must contain. */
  message?: string;
  reason?: string;
  now?: number;
}

function deployment(spec: Obj, status: Obj, generation = 3): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "apps", generation },
    spec: { replicas: 3, progressDeadlineSeconds: 600, ...spec },
    status,
  };
}

const availableDeployment = {
  observedGeneration: 3,
  replicas: 3,
  updatedReplicas: 3,
  readyReplicas: 3,
  availableReplicas: 3,
  conditions: [
    { type: "Available", status: "True", reason: "MinimumReplicasAvailable", message: "Deployment has minimum availability." },
    { type: "Progressing", status: "True", reason: "NewReplicaSetAvailable", message: 'ReplicaSet "web-7d9" has successfully progressed.' },
  ],
};

function statefulSet(spec: Obj, status: Obj): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name: "db", namespace: "apps", generation: 2 },
    spec: { replicas: 3, ...spec },
    status: { observedGeneration: 2, ...status },
  };
}

function pod(status: Obj, metadata: Obj = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "apps", creationTimestamp: "2025-01-01T00:00:00Z", ...metadata },
    spec: {},
    status,
  };
}

function job(spec: Obj, status: Obj): Obj {
  return { apiVersion: "batch/v1", kind: "Job", metadata: { name: "migrate", namespace: "apps", generation: 1 }, spec, status };
}

function fluxKustomization(conditions: Obj[], observedGeneration = 4): Obj {
  return {
    apiVersion: "kustomize.toolkit.fluxcd.io/v1",
    kind: "Kustomization",
    metadata: { name: "infra", namespace: "flux-system", generation: 4 },
    spec: { interval: "10m" },
    status: { observedGeneration, conditions },
  };
}

const CREATED = Date.parse("2025-01-01T00:00:00Z");

const cases: Case[] = [
  // Generic rules
  {
    name: "an object being deleted is Terminating",
    obj: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", deletionTimestamp: "2025-01-01T00:00:00Z" } },
    status: HealthStatus.Terminating,
  },
  {
    name: "a ConfigMap is Current once it exists",
    obj: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { a: "b" } },
    status: HealthStatus.Current,
  },
  {
    name: "a Secret is Current once it exists",
    obj: { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, type: "Opaque" },
    status: HealthStatus.Current,
  },
  {
    name: "an unknown kind without status is Current",
    obj: { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w", generation: 1 }, spec: {} },
    status: HealthStatus.Current,
    message: "Resource is current",
  },
  {
    name: "a custom resource whose controller lags a generation is InProgress",
    obj: { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w", generation: 5 }, status: { observedGeneration: 4 } },
    status: HealthStatus.InProgress,
    reason: "LatestGenerationNotObserved",
    message: "Widget generation is 5, but latest observed generation is 4",
  },
  {
    name: "Reconciling=True is InProgress with the condition's message",
    obj: {
      apiVersion: "example.com/v1",
      kind: "Widget",
      metadata: { name: "w", generation: 1 },
      status: { observedGeneration: 1, conditions: [{ type: "Reconciling", status: "True", reason: "Provisioning", message: "creating bucket" }] },
    },
    status: HealthStatus.InProgress,
    message: "creating bucket",
    reason: "Provisioning",
  },
  {
    name: "Stalled=True is Failed with the condition's message",
    obj: {
      apiVersion: "example.com/v1",
      kind: "Widget",
      metadata: { name: "w", generation: 1 },
      status: { observedGeneration: 1, conditions: [{ type: "Stalled", status: "True", reason: "InvalidConfig", message: "bucket name taken" }] },
    },
    status: HealthStatus.Failed,
    message: "bucket name taken",
    reason: "InvalidConfig",
  },
  {
    name: "Reconciling=False and Stalled=False decide nothing",
    obj: {
      apiVersion: "example.com/v1",
      kind: "Widget",
      metadata: { name: "w", generation: 1 },
      status: {
        observedGeneration: 1,
        conditions: [
          { type: "Reconciling", status: "False", reason: "Done", message: "" },
          { type: "Stalled", status: "False", reason: "Fine", message: "" },
        ],
      },
    },
    status: HealthStatus.Current,
  },
  {
    name: "a malformed status.conditions is Unknown, not a crash",
    obj: { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" }, status: { conditions: "Ready" } },
    status: HealthStatus.Unknown,
    message: "status.conditions is not a list",
  },

  // Flux objects (they publish Ready next to the kstatus conditions)
  {
    name: "Flux Kustomization Ready=True is Current",
    obj: fluxKustomization([{ type: "Ready", status: "True", reason: "ReconciliationSucceeded", message: "Applied revision: main@sha1:abc" }]),
    status: HealthStatus.Current,
  },
  {
    name: "Flux Kustomization retrying after a failure is InProgress",
    obj: fluxKustomization([
      { type: "Reconciling", status: "True", reason: "ProgressingWithRetry", message: "Detecting drift for revision main@sha1:abc" },
      { type: "Ready", status: "False", reason: "HealthCheckFailed", message: "timeout waiting for: [Deployment/apps/web status: 'InProgress']" },
    ]),
    status: HealthStatus.InProgress,
    reason: "ProgressingWithRetry",
  },
  {
    name: "Flux Kustomization waiting on a dependency is InProgress",
    obj: fluxKustomization([
      { type: "Reconciling", status: "True", reason: "ProgressingWithRetry", message: "dependency 'flux-system/crds' is not ready" },
      { type: "Ready", status: "False", reason: "DependencyNotReady", message: "dependency 'flux-system/crds' is not ready" },
    ]),
    status: HealthStatus.InProgress,
    message: "dependency 'flux-system/crds' is not ready",
  },
  {
    name: "Flux Kustomization stalled on a bad path is Failed",
    obj: fluxKustomization([
      { type: "Stalled", status: "True", reason: "ArtifactFailed", message: "kustomization path not found: stat /tmp/x/apps: no such file or directory" },
      { type: "Ready", status: "False", reason: "ArtifactFailed", message: "kustomization path not found" },
    ]),
    status: HealthStatus.Failed,
    reason: "ArtifactFailed",
    message: "kustomization path not found",
  },
  {
    name: "Flux HelmRelease not yet observed at its new generation is InProgress",
    obj: fluxKustomization([{ type: "Ready", status: "True", reason: "ReconciliationSucceeded", message: "" }], 3),
    status: HealthStatus.InProgress,
    reason: "LatestGenerationNotObserved",
  },

  // Deployment
  {
    name: "Deployment fully available is Current",
    obj: deployment({}, availableDeployment),
    status: HealthStatus.Current,
    message: "Deployment is available. Replicas: 3",
  },
  {
    name: "Deployment whose controller has not seen the new spec is InProgress",
    obj: deployment({}, { ...availableDeployment, observedGeneration: 2 }),
    status: HealthStatus.InProgress,
    reason: "LatestGenerationNotObserved",
  },
  {
    name: "Deployment with too few replicas is InProgress",
    obj: deployment({}, { ...availableDeployment, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 }),
    status: HealthStatus.InProgress,
    reason: "LessReplicas",
    message: "Replicas: 1/3",
  },
  {
    name: "Deployment mid-rollout with old pods is InProgress (updated)",
    obj: deployment({}, { ...availableDeployment, updatedReplicas: 1 }),
    status: HealthStatus.InProgress,
    reason: "LessUpdated",
    message: "Updated: 1/3",
  },
  {
    name: "Deployment with surplus pods terminating is InProgress",
    obj: deployment({}, { ...availableDeployment, replicas: 4 }),
    status: HealthStatus.InProgress,
    reason: "ExtraPods",
    message: "Pending termination: 1",
  },
  {
    name: "Deployment with updated but unavailable pods is InProgress",
    obj: deployment({}, { ...availableDeployment, availableReplicas: 2 }),
    status: HealthStatus.InProgress,
    reason: "LessAvailable",
    message: "Available: 2/3",
  },
  {
    name: "Deployment with unready pods is InProgress",
    obj: deployment({}, { ...availableDeployment, readyReplicas: 2 }),
    status: HealthStatus.InProgress,
    reason: "LessReady",
    message: "Ready: 2/3",
  },
  {
    name: "Deployment still progressing (ReplicaSetUpdated) is InProgress",
    obj: deployment(
      {},
      {
        ...availableDeployment,
        conditions: [
          { type: "Available", status: "True", reason: "MinimumReplicasAvailable", message: "" },
          { type: "Progressing", status: "True", reason: "ReplicaSetUpdated", message: 'ReplicaSet "web-7d9" is progressing.' },
        ],
      },
    ),
    status: HealthStatus.InProgress,
    reason: "ReplicaSetNotAvailable",
  },
  {
    name: "Deployment without a progress deadline does not wait for Progressing",
    obj: deployment(
      { progressDeadlineSeconds: undefined },
      { ...availableDeployment, conditions: [{ type: "Available", status: "True", reason: "MinimumReplicasAvailable", message: "" }] },
    ),
    status: HealthStatus.Current,
  },
  {
    name: "Deployment not Available is InProgress",
    obj: deployment(
      {},
      {
        ...availableDeployment,
        conditions: [
          { type: "Available", status: "False", reason: "MinimumReplicasUnavailable", message: "" },
          { type: "Progressing", status: "True", reason: "NewReplicaSetAvailable", message: "" },
        ],
      },
    ),
    status: HealthStatus.InProgress,
    reason: "DeploymentNotAvailable",
  },
  {
    name: "Deployment past its progress deadline is Failed",
    obj: deployment(
      {},
      {
        observedGeneration: 3,
        replicas: 3,
        updatedReplicas: 1,
        readyReplicas: 2,
        availableReplicas: 2,
        conditions: [
          { type: "Available", status: "True", reason: "MinimumReplicasAvailable", message: "" },
          { type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: 'ReplicaSet "web-8f1" has timed out progressing.' },
        ],
      },
    ),
    status: HealthStatus.Failed,
    reason: "ProgressDeadlineExceeded",
    message: 'ReplicaSet "web-8f1" has timed out progressing.',
  },
  {
    name: "Deployment scaled to zero is Current",
    obj: deployment({ replicas: 0 }, { observedGeneration: 3, conditions: availableDeployment.conditions }),
    status: HealthStatus.Current,
  },
  {
    name: "Deployment without spec.replicas defaults to one",
    obj: deployment({ replicas: undefined }, { observedGeneration: 3, replicas: 0, conditions: [] }),
    status: HealthStatus.InProgress,
    message: "Replicas: 0/1",
  },

  // StatefulSet
  {
    name: "StatefulSet rolled out is Current",
    obj: statefulSet({}, { replicas: 3, readyReplicas: 3, currentReplicas: 3, updatedReplicas: 3, currentRevision: "db-1", updateRevision: "db-1" }),
    status: HealthStatus.Current,
  },
  {
    name: "StatefulSet with unready replicas is InProgress",
    obj: statefulSet({}, { replicas: 3, readyReplicas: 1, currentReplicas: 3, updatedReplicas: 3, currentRevision: "db-1", updateRevision: "db-1" }),
    status: HealthStatus.InProgress,
    message: "Ready: 1/3",
  },
  {
    name: "StatefulSet mid-update with revisions differing is InProgress",
    obj: statefulSet({}, { replicas: 3, readyReplicas: 3, currentReplicas: 3, updatedReplicas: 1, currentRevision: "db-1", updateRevision: "db-2" }),
    status: HealthStatus.InProgress,
    reason: "RevisionMismatch",
  },
  {
    name: "StatefulSet partitioned rollout not yet reaching the partition is InProgress",
    obj: statefulSet(
      { updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 1 } } },
      { replicas: 3, readyReplicas: 3, currentReplicas: 2, updatedReplicas: 1, currentRevision: "db-1", updateRevision: "db-2" },
    ),
    status: HealthStatus.InProgress,
    reason: "PartitionRollout",
    message: "updated: 1/2",
  },
  {
    name: "StatefulSet partitioned rollout complete above the partition is Current",
    obj: statefulSet(
      { updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 1 } } },
      { replicas: 3, readyReplicas: 3, currentReplicas: 1, updatedReplicas: 2, currentRevision: "db-1", updateRevision: "db-2" },
    ),
    status: HealthStatus.Current,
    message: "Partition rollout complete",
  },
  {
    name: "StatefulSet with OnDelete updates is Current",
    obj: statefulSet({ updateStrategy: { type: "OnDelete" } }, { replicas: 0 }),
    status: HealthStatus.Current,
  },

  // DaemonSet
  {
    name: "DaemonSet not yet observed by its controller is InProgress",
    obj: { apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "agent", generation: 1 }, spec: {}, status: {} },
    status: HealthStatus.InProgress,
    reason: "NoObservedGeneration",
  },
  {
    name: "DaemonSet with pods still scheduling is InProgress",
    obj: {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "agent", generation: 1 },
      status: { observedGeneration: 1, desiredNumberScheduled: 3, currentNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2, numberReady: 2 },
    },
    status: HealthStatus.InProgress,
    message: "Available: 2/3",
  },
  {
    name: "DaemonSet on every node is Current",
    obj: {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "agent", generation: 1 },
      status: { observedGeneration: 1, desiredNumberScheduled: 3, currentNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3, numberReady: 3 },
    },
    status: HealthStatus.Current,
  },

  // ReplicaSet
  {
    name: "ReplicaSet with a ReplicaFailure is InProgress",
    obj: {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: { name: "rs", generation: 1 },
      spec: { replicas: 2 },
      status: { observedGeneration: 1, conditions: [{ type: "ReplicaFailure", status: "True", reason: "FailedCreate", message: "quota" }] },
    },
    status: HealthStatus.InProgress,
    reason: "ReplicaFailure",
  },
  {
    name: "ReplicaSet fully available is Current",
    obj: {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: { name: "rs", generation: 1 },
      spec: { replicas: 2 },
      status: { observedGeneration: 1, replicas: 2, fullyLabeledReplicas: 2, readyReplicas: 2, availableReplicas: 2 },
    },
    status: HealthStatus.Current,
  },

  // Pod
  {
    name: "Pod running and Ready is Current",
    obj: pod({ phase: "Running", conditions: [{ type: "Ready", status: "True" }] }),
    status: HealthStatus.Current,
  },
  {
    name: "Pod running but not Ready is InProgress",
    obj: pod({ phase: "Running", conditions: [{ type: "Ready", status: "False" }] }),
    status: HealthStatus.InProgress,
    reason: "PodRunningNotReady",
  },
  {
    name: "Pod crash-looping is Failed and names the container",
    obj: pod({
      phase: "Running",
      conditions: [{ type: "Ready", status: "False" }],
      containerStatuses: [
        { name: "app", state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 5m0s" } } },
        { name: "sidecar", state: { running: {} } },
      ],
    }),
    status: HealthStatus.Failed,
    reason: "ContainerCrashLooping",
    message: "Containers in CrashLoop state: app",
  },
  {
    name: "Pod succeeded is Current",
    obj: pod({ phase: "Succeeded" }),
    status: HealthStatus.Current,
  },
  {
    name: "Pod failed has completed and is Current (kstatus does not wait on finished Pods)",
    obj: pod({ phase: "Failed" }),
    status: HealthStatus.Current,
    message: "completed, but not successfully",
  },
  {
    name: "Pod pending is InProgress",
    obj: pod({ phase: "Pending" }),
    status: HealthStatus.InProgress,
    reason: "PodPending",
  },
  {
    name: "Pod unschedulable within 15s of creation is InProgress",
    obj: pod({ phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes are available" }] }),
    now: CREATED + 5_000,
    status: HealthStatus.InProgress,
    reason: "PodNotScheduled",
  },
  {
    name: "Pod unschedulable after 15s is Failed",
    obj: pod({ phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes are available" }] }),
    now: CREATED + 60_000,
    status: HealthStatus.Failed,
    reason: "PodUnschedulable",
    message: "0/3 nodes are available",
  },
  {
    name: "Pod without a phase is InProgress",
    obj: pod({}),
    status: HealthStatus.InProgress,
    reason: "PodNotObserved",
  },
  {
    name: "Pod with an unknown phase is Unknown",
    obj: pod({ phase: "Exploded" }),
    status: HealthStatus.Unknown,
    message: "unknown Pod phase Exploded",
  },

  // PVC
  {
    name: "PVC bound is Current",
    obj: { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "data" }, status: { phase: "Bound" } },
    status: HealthStatus.Current,
  },
  {
    name: "PVC pending is InProgress",
    obj: { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "data" }, status: { phase: "Pending" } },
    status: HealthStatus.InProgress,
    message: "PVC is not Bound. phase: Pending",
  },

  // Service
  {
    name: "ClusterIP Service is Current",
    obj: { apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { type: "ClusterIP", clusterIP: "10.0.0.10" } },
    status: HealthStatus.Current,
  },
  {
    name: "LoadBalancer Service without a cluster IP yet is InProgress",
    obj: { apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { type: "LoadBalancer" }, status: { loadBalancer: {} } },
    status: HealthStatus.InProgress,
    reason: "NoIPAssigned",
  },
  {
    name: "LoadBalancer Service with a cluster IP but no external address is Current (as in kstatus)",
    obj: {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web" },
      spec: { type: "LoadBalancer", clusterIP: "10.0.0.11" },
      status: { loadBalancer: {} },
    },
    status: HealthStatus.Current,
  },

  // Job and CronJob
  {
    name: "Job not started is InProgress",
    obj: job({ completions: 1 }, {}),
    status: HealthStatus.InProgress,
    reason: "JobNotStarted",
  },
  {
    name: "Job running counts as Current",
    obj: job({ completions: 1 }, { startTime: "2025-01-01T00:00:00Z", active: 1 }),
    status: HealthStatus.Current,
    message: "Job in progress",
  },
  {
    name: "Job complete is Current",
    obj: job({ completions: 2 }, { startTime: "2025-01-01T00:00:00Z", succeeded: 2, conditions: [{ type: "Complete", status: "True" }] }),
    status: HealthStatus.Current,
    message: "Job Completed. succeeded: 2/2",
  },
  {
    name: "Job failed is Failed",
    obj: job(
      { completions: 1 },
      {
        startTime: "2025-01-01T00:00:00Z",
        failed: 7,
        conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" }],
      },
    ),
    status: HealthStatus.Failed,
    reason: "JobFailed",
    message: "backoff limit",
  },
  {
    name: "Job suspended is Current",
    obj: job({}, { conditions: [{ type: "Suspended", status: "True" }] }),
    status: HealthStatus.Current,
  },
  {
    name: "CronJob is Current once it exists",
    obj: { apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "nightly" }, spec: { schedule: "@daily" } },
    status: HealthStatus.Current,
  },
  {
    name: "PodDisruptionBudget observed is Current",
    obj: {
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: { name: "web", generation: 1 },
      status: { observedGeneration: 1, disruptionsAllowed: 1 },
    },
    status: HealthStatus.Current,
  },

  // CustomResourceDefinition
  {
    name: "CRD established is Current",
    obj: {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "ledgers.payments.example" },
      status: {
        conditions: [
          { type: "NamesAccepted", status: "True", reason: "NoConflicts", message: "no conflicts found" },
          { type: "Established", status: "True", reason: "InitialNamesAccepted", message: "the initial names have been accepted" },
        ],
      },
    },
    status: HealthStatus.Current,
  },
  {
    name: "CRD installing is InProgress",
    obj: {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "ledgers.payments.example" },
      status: { conditions: [{ type: "Established", status: "False", reason: "Installing", message: "the initial names have not been accepted" }] },
    },
    status: HealthStatus.InProgress,
  },
  {
    name: "CRD with conflicting names is Failed",
    obj: {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "ledgers.payments.example" },
      status: {
        conditions: [{ type: "NamesAccepted", status: "False", reason: "ListKindConflict", message: '"LedgerList" is already in use' }],
      },
    },
    status: HealthStatus.Failed,
    reason: "ListKindConflict",
  },
  {
    name: "CRD with no conditions yet is InProgress",
    obj: { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name: "x.example" } },
    status: HealthStatus.InProgress,
  },
  {
    name: "a kind of the same name in another group gets no built-in rule",
    obj: { apiVersion: "example.com/v1", kind: "Deployment", metadata: { name: "d" }, spec: { replicas: 3 } },
    status: HealthStatus.Current,
  },
];

describe("computeStatus (kstatus rules)", () => {
  for (const c of cases) {
    it(c.name, () => {
      const result = computeStatus(c.obj, c.now === undefined ? {} : { now: c.now });
      assert.equal(result.status, c.status, `message: ${result.message}`);
      if (c.message !== undefined) assert.ok(result.message.includes(c.message), `message ${JSON.stringify(result.message)}`);
      if (c.reason !== undefined) assert.equal(result.reason, c.reason);
    });
  }
});

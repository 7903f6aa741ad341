/**
 * Readiness of a live object by the rules of kstatus
 * (sigs.k8s.io/cli-utils/pkg/kstatus/status), the library Flux uses for
 * health checks. Only the rules are ported; the shape is our own.
 *
 * Order of decision, as in kstatus:
 *   1. `metadata.deletionTimestamp` set             -> Terminating
 *   2. `status.observedGeneration` != generation    -> InProgress
 *   3. condition `Reconciling=True`                 -> InProgress
 *      condition `Stalled=True`                     -> Failed
 *   4. a built-in rule for the group/kind (see kstatus-builtins.ts)
 *   5. otherwise                                    -> Current
 *
 * A `Ready` condition on its own decides nothing (kstatus cannot tell whether
 * Ready=False is progressing or doomed). Flux objects stay compatible because
 * they carry `Reconciling=True` (reason `ProgressingWithRetry` while retrying)
 * and `Stalled=True` on terminal errors next to `Ready`.
 */
import { conditionsOf, intField, nestedField, type Unstructured } from "./fields.js";
import { builtinRuleFor } from "./kstatus-builtins.js";
import { current, failed, HealthStatus, inProgress, type StatusResult } from "./status.js";

export { HealthStatus, type StatusResult } from "./status.js";

export interface ComputeOptions {
  /** Epoch milliseconds; the Pod rule gives a Pod 15s to be scheduled. Default: now. */
  now?: number;
}

/** The kstatus status of a live object. Never throws: a malformed object is `Unknown`. */
export function computeStatus(obj: Unstructured, options: ComputeOptions = {}): StatusResult {
  try {
    return genericStatus(obj) ?? builtinRuleFor(obj)?.(obj, options.now ?? Date.now()) ?? current("Resource is current");
  } catch (err) {
    return { status: HealthStatus.Unknown, message: `cannot compute status: ${(err as Error).message}` };
  }
}

/** Rules 1-3: properties most objects share. Undefined when they do not decide. */
function genericStatus(obj: Unstructured): StatusResult | undefined {
  const deletionTimestamp = nestedField(obj, ["metadata", "deletionTimestamp"]);
  if (typeof deletionTimestamp === "string" && deletionTimestamp !== "") {
    return { status: HealthStatus.Terminating, message: "Resource scheduled for deletion" };
  }

  const generationLag = observedGenerationLag(obj);
  if (generationLag) return generationLag;

  for (const condition of conditionsOf(obj)) {
    if (condition.status !== "True") continue;
    if (condition.type === "Reconciling") {
      return inProgress(condition.reason, condition.message || condition.reason || "Reconciling");
    }
    if (condition.type === "Stalled") {
      return failed(condition.reason, condition.message || condition.reason || "Stalled");
    }
  }
  return undefined;
}

/**
 * InProgress when the controller has not yet observed the latest spec. Objects
 * without `status.observedGeneration` are not judged by this rule.
 */
export function observedGenerationLag(obj: Unstructured): StatusResult | undefined {
  const generation = intField(obj, ["metadata", "generation"]);
  const observed = intField(obj, ["status", "observedGeneration"]);
  if (generation === undefined || observed === undefined || generation === observed) return undefined;
  const kind = typeof obj.kind === "string" ? obj.kind : "Resource";
  return inProgress(
    "LatestGenerationNotObserved",
    `${kind} generation is ${generation}, but latest observed generation is ${observed}`,
  );
}

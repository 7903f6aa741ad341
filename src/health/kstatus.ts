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
 *   5. no built-in rule: the first `Ready` condition (kstatus's
 *      checkReadyCondition, status.go)
 *        Ready=True                                 -> Current
 *        Ready=False or Ready=Unknown               -> InProgress, with the
 *                                                      condition's reason and message
 *      a cert-manager Certificate being issued, a Crossplane claim waiting
 *      for its composite, any controller that only publishes Ready
 *   6. otherwise                                    -> Current
 *
 * kstatus never reads Ready=False as Failed (it cannot tell progressing from
 * doomed); a resource that stays Ready=False holds the wait until the
 * timeout. Flux objects are decided earlier, by `Reconciling`/`Stalled` (3).
 * Kinds with a built-in rule never reach 5 (a Pod's Ready is read by its rule).
 *
 * Edge cases where this port differs from kstatus, on purpose:
 *   - kstatus fails the whole computation when a condition's `status` or
 *     `type` is not a string; here such a condition is ignored like a status
 *     other than True/False/Unknown (kstatus skips those and reads the next
 *     `Ready` condition, as this port does). A `status.conditions` that is not
 *     a list of objects is Unknown in both.
 *   - kstatus gives an InProgress Ready=False an empty message when the
 *     condition has none; here the reason (or "Ready condition is False") is
 *     used, so the wait can say what it waits for.
 *   - Ready is matched case-sensitively, `status` values too ("false" is not
 *     False), as in kstatus.
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
    const rule = builtinRuleFor(obj);
    return genericStatus(obj) ?? (rule ? rule(obj, options.now ?? Date.now()) : readyConditionStatus(obj)) ?? current("Resource is current");
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
 * Rule 5, kstatus's fallback for kinds without a built-in rule: the first
 * `Ready` condition whose status is True, False or Unknown decides (True:
 * Current; False, Unknown: InProgress). Undefined without such a condition.
 */
export function readyConditionStatus(obj: Unstructured): StatusResult | undefined {
  for (const condition of conditionsOf(obj)) {
    if (condition.type !== "Ready") continue;
    switch (condition.status) {
      case "True":
        return current("Resource is Ready");
      case "False":
      case "Unknown":
        return inProgress(condition.reason || `Ready${condition.status}`, condition.message || condition.reason || `Ready condition is ${condition.status}`);
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

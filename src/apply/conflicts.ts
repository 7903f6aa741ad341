import type { ConflictAction, ConflictPolicy, ConflictRule } from "../api/types.js";
import { isInvalid, KubeApiError } from "../kube/errors.js";
import { groupOf } from "./objects.js";
import type { ObjectRef } from "./ports.js";

/** What to do with one object whose apply hit an immutable field. */
export interface ConflictDecision {
  action: ConflictAction;
  /** The rule that decided (its index in `conflictPolicy.rules`), absent for the default. */
  ruleIndex?: number;
  /** Only a matching rule can allow a data-losing Recreate. */
  allowDataLoss: boolean;
}

function ruleMatches(rule: ConflictRule, ref: ObjectRef): boolean {
  const t = rule.target ?? {};
  return (
    (t.apiVersion === undefined || t.apiVersion === ref.apiVersion) &&
    (t.kind === undefined || t.kind === ref.kind) &&
    (t.name === undefined || t.name === ref.name) &&
    (t.namespace === undefined || t.namespace === (ref.namespace ?? ""))
  );
}

/**
 * The first rule whose target matches wins; otherwise the stage default:
 * `conflictPolicy.default`, else Recreate when the stage sets `force: true`,
 * else Fail. An explicit default wins over `force`.
 */
export function decideConflict(ref: ObjectRef, policy: ConflictPolicy | undefined, force: boolean): ConflictDecision {
  const rules = policy?.rules ?? [];
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (ruleMatches(rule, ref)) return { action: rule.action, ruleIndex: i, allowDataLoss: rule.allowDataLoss === true };
  }
  const action = policy?.default ?? (force ? "Recreate" : "Fail");
  return { action, allowDataLoss: false };
}

/** Recreating these deletes the data they hold. */
export function holdsData(ref: ObjectRef): boolean {
  return groupOf(ref.apiVersion) === "" && (ref.kind === "PersistentVolumeClaim" || ref.kind === "PersistentVolume");
}

// The wordings the API server (and CEL `self == oldSelf` rules) use for a change
// it refuses on an existing object: "field is immutable", "may not change once
// set", "spec is immutable after creation", "updates to ... are forbidden",
// "pod updates may not change fields other than ...".
const IMMUTABLE_WORDING = /immutable|may not change|cannot be changed|updates to .* are forbidden|may not be updated/i;

/** An apply refused because it changes a field that cannot be changed in place. */
export function isImmutableFieldError(err: unknown): boolean {
  if (!(err instanceof KubeApiError) || !isInvalid(err)) return false;
  if (IMMUTABLE_WORDING.test(err.serverMessage)) return true;
  return err.causes.some((c) => IMMUTABLE_WORDING.test(c.message ?? ""));
}

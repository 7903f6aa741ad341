/**
 * `readyChecks.exprs`: custom readiness for kinds kstatus does not understand,
 * evaluated the way kustomize-controller evaluates `healthCheckExprs`
 * (Flux RFC-0009):
 *
 *   1. `status.observedGeneration` present and != `metadata.generation` -> InProgress
 *   2. `inProgress` true -> InProgress, else `failed` true -> Failed,
 *      else `current` true -> Current (absent expressions are skipped)
 *   3. none true -> InProgress
 *
 * An expression that fails to evaluate (typically a field the object does not
 * have yet) yields Unknown: not ready, not terminal. The wait goes on and, if
 * it times out, the message carries the CEL error. Flux behaves the same way:
 * its poller reports the object as Unknown until the timeout.
 */
import type { HealthExpr } from "../api/types.js";
import { InvalidSpecError } from "../errors.js";
import { activationFor, compileCelPredicate, type CelPredicate } from "./cel.js";
import type { Unstructured } from "./fields.js";
import { observedGenerationLag } from "./kstatus.js";
import { groupOf } from "./refs.js";
import { HealthStatus, type StatusResult } from "./status.js";

export interface CompiledHealthExpr {
  /** Matched against objects by group and kind; the version is ignored, as in Flux. */
  readonly group: string;
  readonly kind: string;
  evaluate(object: Unstructured): StatusResult;
}

const ORDER = [
  { field: "inProgress", status: HealthStatus.InProgress },
  { field: "failed", status: HealthStatus.Failed },
  { field: "current", status: HealthStatus.Current },
] as const;

/**
 * Compiles every expression of `readyChecks.exprs`. `fieldPath` is the path of
 * the readyChecks block, e.g. `spec.stages[2].readyChecks`; errors name the
 * exact expression field below it.
 */
export function compileHealthExprs(exprs: readonly HealthExpr[] | undefined, fieldPath: string): CompiledHealthExpr[] {
  const seen = new Map<string, number>();
  return (exprs ?? []).map((expr, index) => {
    const path = `${fieldPath}.exprs[${index}]`;
    if (!expr.apiVersion || !expr.kind) throw new InvalidSpecError(`${path}: apiVersion and kind are required`);
    if (!expr.current) throw new InvalidSpecError(`${path}.current: the current expression is required`);

    const group = groupOf(expr.apiVersion);
    const key = `${group}/${expr.kind}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw new InvalidSpecError(
        `${path}: ${expr.kind} in group "${group}" already has health expressions at ${fieldPath}.exprs[${earlier}]; merge them into one entry`,
      );
    }
    seen.set(key, index);

    const predicates = ORDER.flatMap(({ field, status }) => {
      const text = expr[field];
      if (text === undefined || text === "") return [];
      return [{ field, status, predicate: compileCelPredicate(text, `${path}.${field}`) }];
    });
    return { group, kind: expr.kind, evaluate: (object) => evaluateExprs(predicates, object) };
  });
}

interface OrderedPredicate {
  field: string;
  status: HealthStatus;
  predicate: CelPredicate;
}

function evaluateExprs(predicates: readonly OrderedPredicate[], object: Unstructured): StatusResult {
  const lag = observedGenerationLag(object);
  if (lag) return lag;

  const activation = activationFor(object);
  for (const { field, status, predicate } of predicates) {
    const outcome = predicate.evaluateIn(activation);
    if (!outcome.ok) {
      return {
        status: HealthStatus.Unknown,
        reason: "ExpressionError",
        message: `cannot evaluate the ${field} expression ${JSON.stringify(predicate.expression)}: ${outcome.error}`,
      };
    }
    if (outcome.value) return { status, reason: `Expression${capitalise(field)}`, message: `the ${field} expression is true` };
  }
  return { status: HealthStatus.InProgress, reason: "ExpressionsFalse", message: "no health expression is true yet" };
}

function capitalise(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/**
 * CEL predicates over a Kubernetes object, compatible with kustomize-controller's
 * `healthCheckExprs` (fluxcd/pkg/runtime/cel).
 *
 * Variables: every top-level field of the object (`apiVersion`, `kind`,
 * `metadata`, `spec`, `status`, `data`, …) as Flux binds them, plus `self`,
 * the whole object. `self` is our addition: `has(status)` is not valid CEL
 * (has() needs a field selection), but `has(self.status)` is, which makes it
 * the way to guard against an object that has no status yet.
 *
 * Integers: the API server's JSON integers become CEL `int` (as in Go, where
 * the unstructured decoder yields int64), so `status.readyReplicas + 1 == 4`
 * and `e.observedGeneration == metadata.generation` type-check as they do in
 * Flux; other numbers are `double`.
 *
 * Library: @marcbachmann/cel-js. It matches cel-go on every expression of the
 * Flux CEL library and RFC-0009, errors like cel-go on a missing top-level
 * variable, supports `.?` optional selection (Flux enables OptionalTypes) and
 * type-checks at compile time (a non-bool result or an unknown function is a
 * spec error, not a runtime surprise).
 */
import { Environment, type ParseResult } from "@marcbachmann/cel-js";

import { InvalidSpecError } from "../errors.js";

const environment = new Environment({
  unlistedVariablesAreDyn: true,
  enableOptionalTypes: true,
});

export type PredicateOutcome = { ok: true; value: boolean } | { ok: false; error: string };

/** The variables an expression sees for one object (see activationFor). */
export type CelActivation = Readonly<Record<string, unknown>> & { readonly __celActivation: true };

export interface CelPredicate {
  readonly expression: string;
  /** Evaluates against one object. Never throws: a runtime error is an outcome. */
  evaluate(object: Record<string, unknown>): PredicateOutcome;
  /** Same, against an activation prepared once for several predicates. */
  evaluateIn(activation: CelActivation): PredicateOutcome;
}

/** What the library reported when an expression did not compile. */
type CompileOutcome = { ok: true; program: ParseResult } | { ok: false; error: string };

const MAX_CACHED = 512;
const compiled = new Map<string, CompileOutcome>();

/**
 * Compiles a boolean CEL expression once (cached by its text). Throws an
 * InvalidSpecError naming `fieldPath` when the expression does not parse, does
 * not type-check, or cannot yield a bool.
 */
export function compileCelPredicate(expression: string, fieldPath: string): CelPredicate {
  const outcome = compileCached(expression);
  if (!outcome.ok) {
    throw new InvalidSpecError(`${fieldPath}: invalid CEL expression ${JSON.stringify(expression)}: ${outcome.error}`);
  }
  const { program } = outcome;
  return {
    expression,
    evaluate: (object) => evaluateBoolean(program, activationFor(object)),
    evaluateIn: (activation) => evaluateBoolean(program, activation),
  };
}

/**
 * The variables an expression sees for one object. A caller that evaluates
 * several predicates against the same object converts it once.
 */
export function activationFor(object: Record<string, unknown>): CelActivation {
  const converted = toCelValue(object) as Record<string, unknown>;
  const activation: Record<string, unknown> = { ...converted, self: converted };
  return activation as CelActivation;
}

function evaluateBoolean(program: ParseResult, activation: Readonly<Record<string, unknown>>): PredicateOutcome {
  let value: unknown;
  try {
    value = program(activation);
  } catch (err) {
    return { ok: false, error: errorText(err) };
  }
  if (typeof value !== "boolean") return { ok: false, error: `expression yielded ${celTypeName(value)}, not a bool` };
  return { ok: true, value };
}

function compileCached(expression: string): CompileOutcome {
  const hit = compiled.get(expression);
  if (hit) return hit;
  const outcome = compile(expression);
  if (compiled.size >= MAX_CACHED) {
    const oldest = compiled.keys().next();
    if (!oldest.done) compiled.delete(oldest.value);
  }
  compiled.set(expression, outcome);
  return outcome;
}

function compile(expression: string): CompileOutcome {
  if (expression.trim() === "") return { ok: false, error: "the expression is empty" };
  let program: ParseResult;
  try {
    program = environment.parse(expression);
  } catch (err) {
    return { ok: false, error: errorText(err) };
  }
  const checked = program.check();
  if (!checked.valid) return { ok: false, error: errorText(checked.error) };
  if (checked.type !== "bool" && checked.type !== "dyn") {
    return { ok: false, error: `the expression yields ${checked.type}, it must yield a bool` };
  }
  return { ok: true, program };
}

/** JSON values -> CEL input: integral numbers become int (bigint), the rest stays. */
function toCelValue(value: unknown): unknown {
  if (typeof value === "number") return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(toCelValue);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(value)) out[key] = toCelValue(entry);
    return out;
  }
  return value;
}

function celTypeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "bigint") return "int";
  if (typeof value === "number") return "double";
  if (Array.isArray(value)) return "list";
  return typeof value === "object" ? "map" : typeof value;
}

/** One line for status messages: the library's summary plus the column it points at. */
function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const { summary, range } = err as Error & { summary?: string; range?: { start: number } };
  const text = summary ?? err.message.split("\n")[0] ?? err.message;
  return range ? `${text} (at column ${range.start + 1})` : text;
}

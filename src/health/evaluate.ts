/**
 * A stage's readiness: which objects are checked, by which rule, and what
 * their statuses add up to. Pure: live objects come in as a map.
 */
import type { KubeObject, ReadyChecks } from "../api/types.js";
import { intField, type Unstructured } from "./fields.js";
import { compileHealthExprs, type CompiledHealthExpr } from "./health-exprs.js";
import { computeStatus } from "./kstatus.js";
import { groupOf, objectId, refOf, type ObjectRef } from "./refs.js";
import { HealthStatus, type StatusResult } from "./status.js";

export interface HealthPlanInput {
  /** Position of the stage in `spec.stages`, for error field paths. */
  stageIndex: number;
  stageName: string;
  /** The objects the stage applied. */
  objects: readonly ObjectRef[];
  readyChecks?: ReadyChecks;
  /**
   * Jobs whose applied spec sets `ttlSecondsAfterFinished` (see jobsWithTTL):
   * the TTL controller deletes them once finished, so their absence is not a
   * failure to wait for.
   */
  jobsWithTTL?: readonly ObjectRef[];
}

export interface HealthPlan {
  stageName: string;
  /** `readyChecks.disableWait`: the caller applies and moves on without waiting. */
  waitDisabled: boolean;
  /**
   * The objects whose live state decides readiness: every applied object, or
   * only those named in `readyChecks.checks` (which may lie outside the stage).
   */
  targets: ObjectRef[];
  exprs: CompiledHealthExpr[];
  /**
   * Ids of Jobs whose absence counts as done: those given as `jobsWithTTL`,
   * and those stageHealth() saw finished or with `ttlSecondsAfterFinished`
   * set earlier in the same wait. stageHealth() adds to it, so keep one plan
   * per wait.
   */
  goneJobsAreDone: Set<string>;
}

/** Live objects keyed by objectId(); undefined (or absent) means not found. */
export type LiveObjects = ReadonlyMap<string, Unstructured | undefined>;

export interface ObjectHealth extends StatusResult {
  object: ObjectRef;
}

export interface StageHealth {
  ready: boolean;
  /** The first object in a terminal state; the wait ends as soon as there is one. */
  failed?: ObjectHealth;
  /** Every checked object that is not Current, in target order. */
  pending: ObjectHealth[];
  /** How many objects were checked. */
  checked: number;
}

/**
 * Decides what to check for one stage and compiles its CEL expressions (an
 * invalid expression throws InvalidSpecError naming its field). Compiled even
 * with disableWait, so a broken spec is reported the same way either way.
 */
export function planStageHealth(input: HealthPlanInput): HealthPlan {
  const readyChecks = input.readyChecks ?? {};
  const exprs = compileHealthExprs(readyChecks.exprs, `spec.stages[${input.stageIndex}].readyChecks`);
  const wanted: readonly ObjectRef[] =
    readyChecks.checks && readyChecks.checks.length > 0 ? readyChecks.checks : input.objects;
  return {
    stageName: input.stageName,
    waitDisabled: readyChecks.disableWait === true,
    targets: uniqueRefs(wanted),
    exprs,
    goneJobsAreDone: new Set((input.jobsWithTTL ?? []).filter(isJob).map(objectId)),
  };
}

/**
 * The Jobs among `objects` whose spec sets `ttlSecondsAfterFinished` (any
 * value, 0 included), for HealthPlanInput.jobsWithTTL. The rule is Flux's
 * (fluxcd/pkg ssa: ExtractJobsWithTTL, and WaitForSet treats such a Job that
 * is NotFound as Current).
 */
export function jobsWithTTL(objects: readonly KubeObject[]): ObjectRef[] {
  return objects.filter((obj) => isJob(obj) && hasTTL(obj)).map(refOf);
}

export interface EvaluateOptions {
  /** Epoch milliseconds for time-dependent rules; default now. */
  now?: number;
}

/**
 * Aggregates the status of every target. Ready only when all are Current.
 * A batch Job that is gone counts as Current when it was seen finished or
 * with `ttlSecondsAfterFinished` earlier in this wait, or was applied with
 * that field (`plan.goneJobsAreDone`, which this call updates): the TTL
 * controller deleted it after it finished, which is not a reason to time out.
 */
export function stageHealth(plan: HealthPlan, live: LiveObjects, options: EvaluateOptions = {}): StageHealth {
  const pending: ObjectHealth[] = [];
  let failed: ObjectHealth | undefined;
  for (const ref of plan.targets) {
    const id = objectId(ref);
    const obj = live.get(id);
    const result =
      obj === undefined && plan.goneJobsAreDone.has(id)
        ? { object: ref, status: HealthStatus.Current, message: "Job is gone after it finished (ttlSecondsAfterFinished)" }
        : objectHealth(ref, obj, plan.exprs, options);
    if (obj !== undefined && isJob(ref) && (hasTTL(obj) || result.status === HealthStatus.Current)) plan.goneJobsAreDone.add(id);
    if (result.status === HealthStatus.Current) continue;
    pending.push(result);
    if (result.status === HealthStatus.Failed && !failed) failed = result;
  }
  const health: StageHealth = { ready: pending.length === 0, pending, checked: plan.targets.length };
  if (failed) health.failed = failed;
  return health;
}

function objectHealth(
  ref: ObjectRef,
  live: Unstructured | undefined,
  exprs: readonly CompiledHealthExpr[],
  options: EvaluateOptions,
): ObjectHealth {
  if (live === undefined) return { object: ref, status: HealthStatus.NotFound, message: "object not found" };
  const group = groupOf(ref.apiVersion);
  const expr = exprs.find((e) => e.group === group && e.kind === ref.kind);
  const result = expr ? expr.evaluate(live) : computeStatus(live, options.now === undefined ? {} : { now: options.now });
  return { object: ref, ...result };
}

function isJob(ref: { apiVersion: string; kind: string }): boolean {
  return ref.kind === "Job" && groupOf(ref.apiVersion) === "batch";
}

function hasTTL(obj: Unstructured | KubeObject): boolean {
  return typeof intField(obj as Unstructured, ["spec", "ttlSecondsAfterFinished"]) === "number";
}

function uniqueRefs(refs: readonly ObjectRef[]): ObjectRef[] {
  const byId = new Map<string, ObjectRef>();
  for (const ref of refs) {
    const id = objectId(ref);
    if (!byId.has(id)) byId.set(id, ref);
  }
  return [...byId.values()];
}

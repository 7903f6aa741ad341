/**
 * The reconciler's decisions as small pure functions (the shape of Flux's
 * `finalizerShouldDeleteResources`): each takes plain values and is tested
 * without a cluster in test/unit/controller/decisions.test.ts.
 */
import type { StageSet } from "../api/types.js";
import { Annotations } from "../api/types.js";
import { parseDuration } from "../api/duration.js";
import { inventoryName } from "../apply/inventory.js";
import { errorMessage, InvalidSpecError } from "../errors.js";
import type { ResolvedSource } from "../source/resolve.js";
import { findCondition } from "./conditions.js";

/**
 * The longest delay a Node.js timer honours (2^31-1 ms, about 24.8 days); a
 * longer one fires at once. A longer interval is requeued at this bound and
 * the run simply finds nothing to do.
 */
export const MAX_REQUEUE_MS = 2_147_483_647;

/** Flux's default `--interval-jitter-percentage`: requeues spread ±5% so StageSets created together do not run together. */
export const DEFAULT_JITTER_FRACTION = 0.05;

export interface Intervals {
  /** Delay before the next steady-state run (the shorter of interval and driftDetectionInterval), ms. */
  next: number;
  /** Delay before retrying a failed run, ms. */
  retry: number;
}

/**
 * `spec.interval`, `spec.retryInterval` (default: interval) and
 * `spec.driftDetectionInterval` in milliseconds. Throws InvalidSpecError
 * naming the field when one is not a duration or is out of range.
 */
export function intervalsOf(stageSet: StageSet, defaultIntervalMs: number): Intervals {
  const parse = (value: string | undefined, field: string, fallback: number) => {
    if (!value) return fallback;
    let ms: number;
    try {
      ms = parseDuration(value, field);
    } catch (err) {
      throw new InvalidSpecError(errorMessage(err));
    }
    if (ms <= 0) throw new InvalidSpecError(`${field}: ${JSON.stringify(value)} must be longer than zero, e.g. 5m`);
    return ms;
  };
  const interval = parse(stageSet.spec.interval, "spec.interval", defaultIntervalMs);
  const retry = parse(stageSet.spec.retryInterval, "spec.retryInterval", interval);
  const drift = parse(stageSet.spec.driftDetectionInterval, "spec.driftDetectionInterval", interval);
  return { next: Math.min(interval, drift), retry };
}

/**
 * `ms` spread by ±`fraction` (Flux's jittered requeue) and capped at
 * MAX_REQUEUE_MS. `random` returns [0, 1), injectable for tests.
 */
export function jittered(ms: number, fraction = DEFAULT_JITTER_FRACTION, random: () => number = Math.random): number {
  const spread = ms * fraction * (2 * random() - 1);
  return Math.min(MAX_REQUEUE_MS, Math.max(1, Math.round(ms + spread)));
}

/**
 * A forced run: the force token equals the reconcile request and that
 * request has not been handled yet (once handled, the StageSet is suspended
 * again).
 */
export function forcedOnce(stageSet: StageSet): boolean {
  const annotations = stageSet.metadata.annotations ?? {};
  const token = annotations[Annotations.forceReconcile];
  return token !== undefined && token === annotations[Annotations.requestedAt] && token !== stageSet.status?.lastHandledReconcileAt;
}

/**
 * A run is steady-state when the last one succeeded for this generation and
 * every source is still at the revision it applied: then only drift can
 * change anything, and progress is not published stage by stage.
 */
export function isSteadyState(stageSet: StageSet, revisions: readonly string[]): boolean {
  const status = stageSet.status;
  if (!status) return false;
  const ready = findCondition(status.conditions, "Ready");
  if (ready?.status !== "True" || status.observedGeneration !== stageSet.metadata.generation) return false;
  return revisions.every((revision, i) => isStageSteady(stageSet, i, revision));
}

/** True when stage `index` last became Ready at `revision` (its phase need not be published again). */
export function isStageSteady(stageSet: StageSet, index: number, revision: string): boolean {
  const known = stageSet.status?.stages?.find((s) => s.name === stageSet.spec.stages[index]?.name);
  return known?.appliedRevision === revision && known.phase === "Ready";
}

/**
 * `applied 2 stage(s): default/app at main@sha1:…, default/crds at v1.2.0`:
 * the Ready message of a successful run, naming each source once with its revision.
 */
export function succeededMessage(stageCount: number, resolved: readonly Pick<ResolvedSource, "key" | "artifact">[]): string {
  const bySource = new Map<string, string>();
  for (const r of resolved) if (!bySource.has(r.key)) bySource.set(r.key, r.artifact.revision);
  const sources = [...bySource.entries()].map(([key, revision]) => `${key} at ${revision}`);
  return `applied ${stageCount} stage(s): ${sources.join(", ")}`;
}

/**
 * Another StageSet of the same namespace whose StageInventory names
 * (`<stageset>-<stage>-<shard>`) equal ours for some stage: `web` with stage
 * `prod-eu` and `web-prod` with stage `eu` both write `web-prod-eu-0`. The
 * StageSet created later (then the later name) is the one refused, so the
 * first keeps working. Returns the message for the refused one, or undefined.
 */
export function inventoryNameCollision(stageSet: StageSet, others: readonly StageSet[]): string | undefined {
  const namespace = stageSet.metadata.namespace ?? "";
  const name = stageSet.metadata.name ?? "";
  const ours = new Map((stageSet.spec.stages ?? []).map((s) => [inventoryName(name, s.name, 0), s.name]));
  for (const other of others) {
    const otherName = other.metadata.name ?? "";
    if (otherName === name || (other.metadata.namespace ?? "") !== namespace) continue;
    if (!createdBefore(other, stageSet)) continue;
    for (const stage of other.spec?.stages ?? []) {
      const inventory = inventoryName(otherName, stage.name, 0);
      const mine = ours.get(inventory);
      if (mine === undefined) continue;
      return (
        `spec.stages: stage "${mine}" of StageSet ${namespace}/${name} and stage "${stage.name}" of StageSet ` +
        `${namespace}/${otherName} would both keep their inventory in StageInventory ${inventory}; rename the stage ` +
        `or the StageSet (the names <stageset>-<stage> must differ)`
      );
    }
  }
  return undefined;
}

function createdBefore(a: StageSet, b: StageSet): boolean {
  const ta = a.metadata.creationTimestamp ?? "";
  const tb = b.metadata.creationTimestamp ?? "";
  if (ta !== tb) return ta < tb;
  return (a.metadata.name ?? "") < (b.metadata.name ?? "");
}

/** What a run was started with, to tell whether newer input has arrived. */
export interface RunInput {
  generation: number | undefined;
  requestedAt: string | undefined;
  /** Revision per source key, as resolved at the start of the run. */
  revisions: ReadonlyMap<string, string>;
}

/**
 * Why the input of a run under way is superseded, or undefined when it is
 * not: the StageSet's generation changed, a reconcile was requested, or a
 * source of the run published another revision (CONTRACT "Decisions":
 * superseded input cancels a wait). `current` reads the latest revision of a
 * source key (from the watch cache).
 */
export function supersededBy(
  input: RunInput,
  latest: StageSet | undefined,
  current: (sourceKey: string) => string | undefined,
): string | undefined {
  if (latest) {
    if (latest.metadata.generation !== input.generation) {
      return `the StageSet's spec changed (generation ${input.generation ?? "?"} → ${latest.metadata.generation ?? "?"})`;
    }
    const requestedAt = latest.metadata.annotations?.[Annotations.requestedAt];
    if (requestedAt !== undefined && requestedAt !== input.requestedAt) return `a reconcile was requested (${requestedAt})`;
  }
  for (const [key, revision] of input.revisions) {
    const now = current(key);
    if (now !== undefined && now !== revision) return `source ${key} published revision ${now}, superseding ${revision}`;
  }
  return undefined;
}

/**
 * Fields of the spec this controller version does not implement yet, each
 * with its path. CONTRACT "Decisions": a capability the StageSet asks for
 * that the controller cannot honour fails closed — the run stops before
 * anything is applied, naming the field — never silently ignored (applying
 * SOPS ciphertext, skipping a gate action or an update window would be
 * worse than not applying at all). Each entry leaves this list when its
 * feature lands.
 */
export function unsupportedFields(spec: StageSet["spec"], supported: { actions?: boolean; decryption?: boolean; rollback?: boolean } = {}): string[] {
  const fields: string[] = [];
  if (spec.decryption && !supported.decryption) fields.push("spec.decryption (SOPS decryption)");
  if (spec.decryption && spec.decryption.provider !== "sops") fields.push(`spec.decryption.provider (${JSON.stringify(spec.decryption.provider)}: only sops)`);
  if (spec.rollbackOnFailure && !supported.rollback) fields.push("spec.rollbackOnFailure");
  if (!supported.actions && (spec.migrations ?? []).length > 0) fields.push("spec.migrations (their actions need an action executor)");
  for (const [i, stage] of supported.actions ? [] : (spec.stages ?? []).entries()) {
    for (const list of ["pre", "post", "onFailure"] as const) {
      if ((stage.actions?.[list] ?? []).length > 0) fields.push(`spec.stages[${i}].actions.${list}`);
    }
  }
  return fields;
}

/** The InvalidSpec message for {@link unsupportedFields}, or undefined when every field is honoured. */
export function unsupportedMessage(spec: StageSet["spec"], supported: { actions?: boolean; decryption?: boolean; rollback?: boolean } = {}): string | undefined {
  const fields = unsupportedFields(spec, supported);
  if (fields.length === 0) return undefined;
  return (
    `${fields.join(", ")}: not implemented by this controller version, so nothing was applied rather than ` +
    `ignoring ${fields.length === 1 ? "it" : "them"}; remove ${fields.length === 1 ? "the field" : "these fields"} or run a controller version that supports ${fields.length === 1 ? "it" : "them"}`
  );
}

/**
 * The stage whose action ledger a `stages.metio.wtf/reconcile-stage`
 * request clears in this run, with the value to echo in
 * `status.lastHandledReconcileStage`, or undefined. The annotation's value
 * is `<stage>` or `<stage>@<token>` (what `stagesetctl reconcile --stage`
 * stamps); like `reconcile.fluxcd.io/requestedAt`, a value is handled once,
 * and a new request needs a new value.
 */
export function reconcileStageRequest(stageSet: StageSet): { stage: string; handled: string } | undefined {
  const value = stageSet.metadata.annotations?.[Annotations.reconcileStage];
  if (!value || stageSet.status?.lastHandledReconcileStage === value) return undefined;
  const at = value.indexOf("@");
  return { stage: at < 0 ? value : value.slice(0, at), handled: value };
}

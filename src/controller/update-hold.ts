/**
 * Update-window decisions as pure functions: which revisions of a run are
 * new (not yet approved for rollout), whether a closed window holds them,
 * and what a held run re-applies instead (the pinned snapshot).
 *
 * Rules (CONTRACT `updateWindows`, `windowScope`, "Decisions"):
 * - a revision is new when its stage's snapshot (the last successful apply)
 *   is at another revision and no rollout of it is already under way
 *   (`status.lastAttemptedRevisions`): a run that started while updates were
 *   allowed finishes the revisions it pinned, also across retries and
 *   restarts;
 * - an unhandled `stages.metio.wtf/update-now` value lets the held revisions
 *   through once;
 * - while held, `windowScope: Updates` re-applies each stage's snapshot
 *   (drift correction on the pinned state) and `All` applies nothing.
 */
import type { SnapshotEntry, StageSet, StageSetStatus } from "../api/types.js";
import { Annotations } from "../api/types.js";
import type { UpdateGate } from "../gating/windows.js";
import type { ResolvedSource } from "../source/resolve.js";

/**
 * The revisions this run resolved that are not approved yet, by source key
 * (`<namespace>/<source>`): the stage's snapshot is at another revision (or
 * the stage has none) and the revision is not the one a rollout under way
 * attempts. Empty when nothing new would roll out.
 */
export function newRevisions(
  stageSet: StageSet,
  status: StageSetStatus | undefined,
  resolved: readonly Pick<ResolvedSource, "key" | "artifact">[],
): Record<string, string> {
  const held: Record<string, string> = {};
  for (const [index, stage] of stageSet.spec.stages.entries()) {
    const source = resolved[index];
    if (!source) continue;
    const revision = source.artifact.revision;
    const snapshot = status?.lastAppliedSnapshot?.find((s) => s.stage === stage.name);
    if (snapshot?.revision === revision) continue;
    if (status?.lastAttemptedRevisions?.[source.key] === revision) continue;
    held[source.key] = revision;
  }
  return held;
}

/**
 * The `stages.metio.wtf/update-now` value to honour in this run, or
 * undefined when there is none or it was handled already
 * (`status.lastHandledUpdateOverride`). Like `reconcile.fluxcd.io/requestedAt`,
 * each value pushes one rollout through; a new override needs a new value.
 */
export function updateOverride(stageSet: StageSet): string | undefined {
  const value = stageSet.metadata.annotations?.[Annotations.updateNow];
  if (!value || value === stageSet.status?.lastHandledUpdateOverride) return undefined;
  return value;
}

/** One stage of a held run: the snapshot it re-applies, or none (the stage was never applied and stays untouched). */
export interface PinnedStage {
  index: number;
  snapshot: SnapshotEntry;
}

/**
 * The stages a held run re-applies with `windowScope: Updates`, in stage
 * order: each with its snapshot, stopping before the first stage that has
 * none (stage N+1 never runs before stage N was applied).
 */
export function pinnedStages(stageSet: StageSet, snapshots: readonly SnapshotEntry[] | undefined): PinnedStage[] {
  const pinned: PinnedStage[] = [];
  for (const [index, stage] of stageSet.spec.stages.entries()) {
    const snapshot = snapshots?.find((s) => s.stage === stage.name);
    if (!snapshot) break;
    pinned.push({ index, snapshot });
  }
  return pinned;
}

/** True when the held revisions differ from the ones the last run recorded as pending (a new hold: event and counter once). */
export function isNewHold(previous: StageSetStatus["pendingUpdate"] | undefined, revisions: Record<string, string>): boolean {
  const before = previous?.revisions ?? {};
  const keys = new Set([...Object.keys(before), ...Object.keys(revisions)]);
  return [...keys].some((key) => before[key] !== revisions[key]);
}

/**
 * `source default/app revision main@sha1:abc, source default/db revision v2`:
 * the held revisions for messages and events.
 */
export function describeRevisions(revisions: Record<string, string>): string {
  return Object.entries(revisions)
    .map(([key, revision]) => `source ${key} revision ${revision}`)
    .join(", ");
}

/**
 * When held revisions ship, for the UpdateDeferred message: "when that
 * window ends" when the Deny that `gate.heldBy` names (with its end) ends at
 * the next opening, the next opening (RFC 3339, UTC) when it comes later (an
 * Allow window still closed then), or how to ship without a window when none
 * opens within the search horizon.
 */
export function whenHeldShips(gate: Pick<UpdateGate, "nextOpensAt" | "holdEndsAt">): string {
  if (gate.nextOpensAt === undefined) return "no window opens within the search horizon; ship it with stagesetctl reconcile --update-now";
  if (gate.holdEndsAt === gate.nextOpensAt) return "it ships when that window ends";
  return `it ships when the next window opens at ${new Date(gate.nextOpensAt).toISOString()}`;
}

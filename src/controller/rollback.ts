/**
 * Rollback decisions as pure functions: what a successful run records as
 * snapshots, which stages a failed run restores, and whether a failed
 * revision is parked (CONTRACT "Decisions": failed revisions with rollback).
 */
import type { SnapshotEntry, StageSet, StageSetStatus } from "../api/types.js";
import type { ResolvedSource } from "../source/resolve.js";

/** The snapshot of a successful run: each stage's artifact (url, digest, revision), in stage order. */
export function snapshotsOf(stageSet: StageSet, resolved: readonly Pick<ResolvedSource, "artifact">[]): SnapshotEntry[] {
  return stageSet.spec.stages.map((stage, i) => {
    const artifact = resolved[i]!.artifact;
    return { stage: stage.name, url: artifact.url, digest: artifact.digest, revision: artifact.revision };
  });
}

/** Snapshot entries whose artifact a successful run newly recorded (to put into the rollback store). */
export function newSnapshots(previous: readonly SnapshotEntry[] | undefined, next: readonly SnapshotEntry[]): SnapshotEntry[] {
  return next.filter((s) => !previous?.some((p) => p.stage === s.stage && p.digest === s.digest));
}

/** A stage a failed run restores: its index, the snapshot to go back to, and the revision it failed at. */
export interface RestorePlan {
  index: number;
  snapshot: SnapshotEntry;
  failedRevision: string;
}

/**
 * The stages a failed run restores, in stage order: those up to and
 * including the failed one (later stages were not touched) whose artifact in
 * this run differs from their snapshot. Empty when there is no snapshot at
 * all (a first rollout has nothing to go back to).
 */
export function restorePlan(
  stageSet: StageSet,
  snapshots: readonly SnapshotEntry[] | undefined,
  resolved: readonly Pick<ResolvedSource, "artifact">[],
  failedIndex: number,
): RestorePlan[] {
  if (!snapshots?.length) return [];
  const plan: RestorePlan[] = [];
  for (const [index, stage] of stageSet.spec.stages.entries()) {
    if (index > failedIndex) break;
    const snapshot = snapshots.find((s) => s.stage === stage.name);
    const artifact = resolved[index]?.artifact;
    if (!snapshot || !artifact || snapshot.digest === artifact.digest) continue;
    plan.push({ index, snapshot, failedRevision: artifact.revision });
  }
  return plan;
}

/**
 * True when the revisions this run resolved are the parked ones, at the same
 * generation and without a forced reconcile: the failed rollout is not
 * retried. `revisions` maps `<namespace>/<source>` to the revision resolved now.
 */
export function isParked(status: StageSetStatus | undefined, generation: number | undefined, revisions: ReadonlyMap<string, string>, forced: boolean): boolean {
  const parked = status?.parkedRevisions;
  if (!parked || Object.keys(parked).length === 0 || forced) return false;
  if (status?.observedGeneration !== generation) return false;
  return Object.entries(parked).every(([key, revision]) => revisions.get(key) === revision);
}

/** The revisions to park after a rollback: those of this run that differ from what was last applied. */
export function revisionsToPark(attempted: Record<string, string>, applied: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(attempted).filter(([key, revision]) => applied?.[key] !== revision));
}

import type { ConflictPolicy, InventoryEntry, KubeObject } from "../api/types.js";
import { AppliedStateMemo } from "./drift.js";
import { ChangeSet } from "./change-set.js";
import { applyStage, type ApplyResult } from "./engine.js";
import {
  buildInventories,
  entriesOf,
  leftEntries,
  memberLabels,
  readStageInventory,
  unionEntries,
  writeInventories,
  type InventoryMode,
  type StageInventoryState,
} from "./inventory.js";
import { objectId, type StageSetRef } from "./objects.js";
import type { ApplyClient, ObjectRef } from "./ports.js";
import { applySetMembers, inventoryRefs, pruneObjects, type PruneResult } from "./prune.js";

export interface SyncStageOptions {
  /** Applies and prunes the objects (the tenant's identity, possibly in a remote cluster). */
  client: ApplyClient;
  /** Where the StageInventory objects live (the StageSet's own cluster); default `client`. */
  inventoryClient?: ApplyClient;
  stageSet: StageSetRef & { uid?: string };
  stage: { name: string; prune?: boolean; force?: boolean; conflictPolicy?: ConflictPolicy };
  /** Index of the stage in `spec.stages` (recorded as `spec.stagePosition`). */
  position: number;
  objects: readonly KubeObject[];
  mode: InventoryMode;
  shardCap: number;
  memo?: AppliedStateMemo;
  concurrency?: number;
  /**
   * Ids the prune must not delete (objects another stage of this StageSet
   * renders now). A function is only called when the stage has objects to
   * prune, so an expensive answer costs nothing in the common case.
   */
  keep?: ReadonlySet<string> | ((candidates: readonly ObjectRef[]) => Promise<ReadonlySet<string>>);
  dryRun?: boolean;
  crdTimeoutMs?: number;
  /** Called once the apply is done and before objects that left the stage are deleted (only when there are some). */
  onPrune?: (candidates: readonly ObjectRef[]) => Promise<void>;
  /**
   * Runs after the apply and before the prune (the controller's verify):
   * objects that left the stage are deleted only once it resolves, so a
   * renamed Service is not removed before its successor serves. A throw
   * skips the prune (the union inventory keeps the leaving objects findable).
   */
  beforePrune?: (applied: ApplyResult) => Promise<void>;
  /** Where every write is recorded as it happens; default a new one (returned as `changes`). */
  changes?: ChangeSet;
  /**
   * The stage's recorded inventory, when the caller started reading it
   * already (runStage reads it while the stage builds: the controller is its
   * only writer, so the answer cannot go stale meanwhile); default read here.
   */
  previous?: Promise<StageInventoryState>;
}

export interface StageSyncResult {
  apply: ApplyResult;
  /** Every write of the stage: the apply's entries, then the prune's (deleted, kept). */
  changes: ChangeSet;
  prune: PruneResult;
  /** The stage's inventory after the run. */
  entries: InventoryEntry[];
  shards: number;
  /** StageInventory writes (applies and deletes); 0 when nothing changed. */
  inventoryWrites: number;
}

/**
 * Apply, verify (the caller's `beforePrune`), prune and record one stage. The
 * inventory is first written as the union of the old and new objects, before
 * the first object is sent (so an apply, verify or prune that fails or is cut
 * short half way leaves every object findable; in ApplySet mode after the
 * apply, from the members found by label), then as the new set once the
 * prune is done; each write is skipped when the inventory already says so.
 * Throws what applyStage and pruneObjects throw, and ObjectOperationError
 * when the inventory cannot be read or written.
 */
export async function syncStage(o: SyncStageOptions): Promise<StageSyncResult> {
  const { client, stageSet, stage } = o;
  const inventoryClient = o.inventoryClient ?? client;
  const changes = o.changes ?? new ChangeSet();
  const previous = await (o.previous ?? readStageInventory(inventoryClient, stageSet, stage.name));
  const inventoriesFor = (members: readonly InventoryEntry[]) =>
    buildInventories({
      stageSet,
      stageSetUid: stageSet.uid,
      stage: stage.name,
      position: o.position,
      entries: members,
      mode: o.mode,
      shardCap: o.shardCap,
    });

  let inventoryWrites = 0;
  let current = previous;
  /** Brings the recorded inventory to `members` (no request when it already says that); returns its shard count. */
  const record = async (members: readonly InventoryEntry[]): Promise<number> => {
    const shards = inventoriesFor(members);
    const w = await writeInventories(inventoryClient, current, shards);
    inventoryWrites += w.written + w.deleted;
    current = { stage: stage.name, position: o.position, shards, entries: shards.flatMap((s) => s.spec.entries) };
    return shards.length;
  };
  const applied = await applyStage({
    client,
    stageSet,
    stage: stage.name,
    objects: o.objects,
    conflictPolicy: stage.conflictPolicy,
    force: stage.force,
    concurrency: o.concurrency,
    dryRun: o.dryRun,
    extraLabels: memberLabels(o.mode, stageSet, stage.name),
    memo: o.memo,
    crdTimeoutMs: o.crdTimeoutMs,
    changes,
    // An ApplySet-mode inventory records no members (they carry its label instead).
    ...(o.mode === "applyset"
      ? {}
      : {
          previousIds: new Set(previous.entries.map((e) => e.id)),
          // What was recorded and what is about to be applied, recorded
          // before the first object is sent: an apply cut short leaves
          // nothing that no inventory lists, so the next run still prunes it.
          // (An ApplySet-mode parent lists kinds, not members; it is
          // written after the apply, from the members found by label.)
          beforeApply: async (desired: readonly KubeObject[]) => void (await record(unionEntries(previous.entries, entriesOf(desired)))),
        }),
  });
  const entries = entriesOf(applied.applied);
  const leaving = await objectsThatLeft(o, previous, entries);
  const leavingEntries = leaving.map((ref) => ({ id: objectId(ref), v: ref.apiVersion }));

  // Until prune has run, the inventory keeps what is leaving as well.
  if (!o.dryRun) await record(unionEntries(leavingEntries, entries));

  if (o.beforePrune) await o.beforePrune(applied);
  if (leaving.length > 0 && o.onPrune) await o.onPrune(leaving);
  const prune = await pruneObjects({
    client,
    stageSet,
    stage: stage.name,
    candidates: leaving,
    prune: stage.prune,
    keep: typeof o.keep === "function" ? (leaving.length > 0 ? await o.keep(leaving) : undefined) : o.keep,
    concurrency: o.concurrency,
    dryRun: o.dryRun,
  });

  for (const ref of prune.pruned) changes.add(ref, "deleted");
  for (const { ref, reason } of prune.kept) changes.add(ref, "kept", reason);

  const shards = o.dryRun ? inventoriesFor(entries).length : await record(entries);
  return { apply: applied, changes, prune, entries, shards, inventoryWrites };
}

async function objectsThatLeft(o: SyncStageOptions, previous: StageInventoryState, entries: InventoryEntry[]): Promise<ObjectRef[]> {
  const now = new Set(entries.map((e) => e.id));
  if (o.mode === "applyset") {
    const kinds = entries.map((e) => ({ apiVersion: e.v, kind: e.id.slice(e.id.lastIndexOf("_") + 1) }));
    const members = await applySetMembers(o.client, o.stageSet, previous, kinds);
    return members.filter((ref) => !now.has(objectId(ref)));
  }
  return inventoryRefs({ ...previous, entries: leftEntries(previous.entries, entries) });
}

import {
  API_VERSION,
  FIELD_MANAGER,
  GROUP,
  Labels,
  STAGEINVENTORY_KIND,
  type InventoryEntry,
  type KubeObject,
  type StageInventory,
} from "../api/types.js";
import type { InventoryMode } from "../config/flags.js";
import { ApplySetKeys, applySetId, parentAnnotations } from "./applyset.js";
import { needsApply } from "./drift.js";
import { ObjectOperationError } from "./errors.js";
import { apiServerMessage } from "./messages.js";
import { retryTransient } from "./retry.js";
import { labelSelector, objectId, type StageSetRef } from "./objects.js";
import type { ApplyClient } from "./ports.js";

export type { InventoryMode };

/** The inventory entries of applied objects, sorted by id (a stable shard layout). */
export function entriesOf(objects: readonly KubeObject[]): InventoryEntry[] {
  const byId = new Map<string, InventoryEntry>();
  for (const obj of objects) byId.set(objectId(obj), { id: objectId(obj), v: obj.apiVersion });
  return sortEntries([...byId.values()]);
}

function sortEntries(entries: InventoryEntry[]): InventoryEntry[] {
  return entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Entries of `previous` whose object is no longer in `next`: what to prune. */
export function leftEntries(previous: readonly InventoryEntry[], next: readonly InventoryEntry[]): InventoryEntry[] {
  const kept = new Set(next.map((e) => e.id));
  return previous.filter((e) => !kept.has(e.id));
}

/** Both sets; where an id is in both, `next`'s apiVersion wins. */
export function unionEntries(previous: readonly InventoryEntry[], next: readonly InventoryEntry[]): InventoryEntry[] {
  const byId = new Map<string, InventoryEntry>();
  for (const e of previous) byId.set(e.id, e);
  for (const e of next) byId.set(e.id, e);
  return sortEntries([...byId.values()]);
}

/** Splits entries into shards of at most `cap`; always at least one (possibly empty) shard. */
export function shardEntries(entries: readonly InventoryEntry[], cap: number): InventoryEntry[][] {
  if (!Number.isInteger(cap) || cap < 1) throw new RangeError(`--inventory-shard-cap must be at least 1, got ${cap}`);
  const shards: InventoryEntry[][] = [];
  for (let i = 0; i < entries.length; i += cap) shards.push(entries.slice(i, i + cap));
  return shards.length > 0 ? shards : [[]];
}

/** `<stageset>-<stage>-<shard>`. */
export function inventoryName(stageSet: string, stage: string, shard: number): string {
  return `${stageSet}-${stage}-${shard}`;
}

/** The ApplySet id of a stage: its shard-0 StageInventory is the parent. */
export function stageApplySetId(stageSet: StageSetRef, stage: string): string {
  return applySetId({ name: inventoryName(stageSet.name, stage, 0), namespace: stageSet.namespace, kind: STAGEINVENTORY_KIND, group: GROUP });
}

/** Labels the engine stamps on members besides the managed-object labels. */
export function memberLabels(mode: InventoryMode, stageSet: StageSetRef, stage: string): Record<string, string> {
  return mode === "entries" ? {} : { [ApplySetKeys.partOf]: stageApplySetId(stageSet, stage) };
}

export interface InventorySpecInput {
  stageSet: StageSetRef;
  /** Set to make the StageSet own its inventories (garbage-collected with it). */
  stageSetUid?: string;
  stage: string;
  position: number;
  /** Every object of the stage (the ApplySet members). */
  entries: readonly InventoryEntry[];
  mode: InventoryMode;
  shardCap: number;
}

/** The StageInventory objects that record a stage (CONTRACT.md "StageInventory"). */
export function buildInventories(input: InventorySpecInput): StageInventory[] {
  const { stageSet, stage, mode } = input;
  const stored = mode === "applyset" ? [] : sortEntries([...input.entries]);
  return shardEntries(stored, input.shardCap).map((entries, shard) => {
    const inv: StageInventory = {
      apiVersion: API_VERSION,
      kind: STAGEINVENTORY_KIND,
      metadata: {
        name: inventoryName(stageSet.name, stage, shard),
        namespace: stageSet.namespace,
        labels: {
          [Labels.inventoryStageSet]: stageSet.name,
          [Labels.inventoryStage]: stage,
          [Labels.inventoryShard]: String(shard),
        },
      },
      spec: { stagePosition: input.position, entries },
    };
    if (input.stageSetUid) {
      inv.metadata.ownerReferences = [
        { apiVersion: API_VERSION, kind: "StageSet", name: stageSet.name, uid: input.stageSetUid, controller: true, blockOwnerDeletion: false },
      ];
    }
    if (shard === 0 && mode !== "entries") {
      inv.metadata.labels![ApplySetKeys.id] = stageApplySetId(stageSet, stage);
      inv.metadata.annotations = parentAnnotations(input.entries, stageSet.namespace);
    }
    return inv;
  });
}

/** The recorded state of one stage. */
export interface StageInventoryState {
  stage: string;
  position: number;
  /** Live shards, by shard index. */
  shards: StageInventory[];
  /** All stored entries (none in applyset mode). */
  entries: InventoryEntry[];
}

function shardIndex(inv: KubeObject): number {
  return Number(inv.metadata.labels?.[Labels.inventoryShard] ?? 0);
}

function stateOf(stage: string, shards: StageInventory[]): StageInventoryState {
  shards.sort((a, b) => shardIndex(a) - shardIndex(b));
  return {
    stage,
    position: shards[0]?.spec?.stagePosition ?? 0,
    shards,
    entries: shards.flatMap((s) => s.spec?.entries ?? []),
  };
}

/** Every stage's recorded inventory for a StageSet, by stage name. One list call. */
export async function listInventories(client: ApplyClient, stageSet: StageSetRef): Promise<Map<string, StageInventoryState>> {
  let items: KubeObject[];
  try {
    ({ items } = await retryTransient(() =>
      client.listAll(API_VERSION, STAGEINVENTORY_KIND, {
        namespace: stageSet.namespace,
        labelSelector: labelSelector({ [Labels.inventoryStageSet]: stageSet.name }),
      }),
    ));
  } catch (err) {
    throw new ObjectOperationError(
      `StageInventory ${stageSet.namespace}/${stageSet.name}-*`,
      `listing the StageInventories of StageSet ${stageSet.namespace}/${stageSet.name} failed: ${apiServerMessage(err)}`,
      err,
    );
  }
  const byStage = new Map<string, StageInventory[]>();
  for (const item of items) {
    const stage = item.metadata.labels?.[Labels.inventoryStage];
    if (!stage) continue;
    const list = byStage.get(stage) ?? [];
    list.push(item as StageInventory);
    byStage.set(stage, list);
  }
  return new Map([...byStage].map(([stage, shards]) => [stage, stateOf(stage, shards)]));
}

/** One stage's recorded inventory (empty when the stage was never applied). */
export async function readStageInventory(client: ApplyClient, stageSet: StageSetRef, stage: string): Promise<StageInventoryState> {
  const all = await listInventories(client, stageSet);
  return all.get(stage) ?? { stage, position: 0, shards: [], entries: [] };
}

const CONTRACT_PREFIXES = ["applyset.kubernetes.io/", `${GROUP}/`];

function contractKeys(obj: KubeObject): string {
  const keys = [...Object.keys(obj.metadata.labels ?? {}), ...Object.keys(obj.metadata.annotations ?? {})];
  return keys
    .filter((k) => CONTRACT_PREFIXES.some((p) => k.startsWith(p)))
    .sort()
    .join(",");
}

/** A live shard already records exactly what `desired` says (no key of ours to add or drop). */
export function inventoryUpToDate(desired: StageInventory, live: KubeObject | undefined): boolean {
  return live !== undefined && !needsApply(desired, live) && contractKeys(desired) === contractKeys(live);
}

export interface InventoryWriteResult {
  written: number;
  deleted: number;
}

/**
 * Brings a stage's StageInventory shards to `desired`: applies the shards
 * that differ and deletes shards beyond the new count. Writes nothing when
 * the recorded inventory already matches.
 */
export async function writeInventories(
  client: ApplyClient,
  current: StageInventoryState,
  desired: readonly StageInventory[],
  options: { fieldManager?: string } = {},
): Promise<InventoryWriteResult> {
  const liveByName = new Map(current.shards.map((s) => [s.metadata.name, s]));
  const result: InventoryWriteResult = { written: 0, deleted: 0 };
  try {
    for (const shard of desired) {
      if (inventoryUpToDate(shard, liveByName.get(shard.metadata.name))) continue;
      await retryTransient(() => client.apply(shard, { fieldManager: options.fieldManager ?? FIELD_MANAGER, force: true }));
      result.written++;
    }
    const wanted = new Set(desired.map((s) => s.metadata.name));
    for (const stale of current.shards) {
      if (wanted.has(stale.metadata.name)) continue;
      const ref = { apiVersion: API_VERSION, kind: STAGEINVENTORY_KIND, name: stale.metadata.name!, namespace: stale.metadata.namespace! };
      await retryTransient(() => client.delete(ref));
      result.deleted++;
    }
  } catch (err) {
    throw new ObjectOperationError(
      `StageInventory ${current.stage}`,
      `stage "${current.stage}": recording the StageInventory failed: ${apiServerMessage(err)}`,
      err,
    );
  }
  return result;
}

/** Deletes every shard of a stage's inventory. */
export async function deleteInventories(client: ApplyClient, state: StageInventoryState): Promise<number> {
  let deleted = 0;
  for (const shard of state.shards) {
    const ref = { apiVersion: API_VERSION, kind: STAGEINVENTORY_KIND, name: shard.metadata.name!, namespace: shard.metadata.namespace! };
    const gone = await retryTransient(() => client.delete(ref));
    if (gone) deleted++;
  }
  return deleted;
}

import type { StageSet } from "../api/types.js";
import { objectId } from "../apply/objects.js";
import { syncStage } from "../apply/stage.js";
import type { InventoryMode } from "../config/flags.js";
import type { KubeClient } from "../kube/client.js";
import type { ChangeKind, ObjectChange, StageChanges } from "./changes.js";
import { DryRunRecorder } from "./dry-run-client.js";
import type { RenderedStage } from "./render.js";

// A dry run writes no StageInventory, so the shard layout never matters.
const UNUSED_SHARD_CAP = 5000;

const KIND_OF_OUTCOME: Record<string, ChangeKind> = {
  created: "create",
  configured: "update",
  recreated: "recreate",
  unchanged: "unchanged",
  skipped: "kept",
};

/**
 * A stage's changes by the controller's own apply and prune, run as a
 * server-side dry run: the API server merges each object exactly as a real
 * apply would (defaults, admission, other managers' fields), and the prune
 * reports what left the inventory. Nothing is persisted.
 */
export async function serverSideChanges(
  client: KubeClient,
  inventory: KubeClient,
  stageSet: StageSet,
  rendered: RenderedStage,
  inventoryMode: InventoryMode,
): Promise<StageChanges> {
  const recorder = new DryRunRecorder(client);
  const result = await syncStage({
    client: recorder,
    inventoryClient: new DryRunRecorder(inventory),
    stageSet: { name: stageSet.metadata.name ?? "", namespace: stageSet.metadata.namespace ?? "" },
    stage: rendered.stage,
    position: rendered.index,
    objects: rendered.objects,
    mode: inventoryMode,
    shardCap: UNUSED_SHARD_CAP,
    dryRun: true,
  });
  const desired = new Map(result.changeSet.applied.map((obj) => [objectId(obj), obj]));
  const objects: ObjectChange[] = result.changeSet.entries.map((entry) => {
    const sent = desired.get(entry.id)!;
    const kind = KIND_OF_OUTCOME[entry.outcome] ?? "update";
    const live = recorder.live.get(entry.id);
    const change: ObjectChange = { kind, ref: entry.ref, merged: kind === "kept" ? sent : (recorder.merged.get(entry.id) ?? live ?? sent) };
    if (live && kind !== "create") change.live = live;
    if (entry.message) change.note = entry.message;
    return change;
  });
  const changes: StageChanges = { stage: rendered.stage, index: rendered.index, objects, pruned: result.prune.pruned };
  if (rendered.revision !== undefined) changes.revision = rendered.revision;
  return changes;
}

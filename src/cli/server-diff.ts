import type { StageSet } from "../api/types.js";
import { objectId } from "../apply/objects.js";
import { syncStage } from "../apply/stage.js";
import type { InventoryMode } from "../config/flags.js";
import type { KubeClient } from "../kube/client.js";
import type { ChangeKind, ObjectChange, StageChanges } from "./changes.js";
import { DryRunRecorder } from "./dry-run-client.js";
import { EarlierStageCrds, EarlierStageKindsClient, notDryRunReason } from "./earlier-stage-kinds.js";
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
 * reports what left the inventory. Nothing is persisted. Objects whose kind
 * the API server does not serve yet, but a CRD of this stage or of an earlier
 * one (`earlier`) will, are shown as rendered and marked `notDryRun`.
 */
export async function serverSideChanges(
  client: KubeClient,
  inventory: KubeClient,
  stageSet: StageSet,
  rendered: RenderedStage,
  inventoryMode: InventoryMode,
  earlier: EarlierStageCrds = new EarlierStageCrds(),
): Promise<StageChanges> {
  const recorder = new DryRunRecorder(client);
  const applyClient = new EarlierStageKindsClient(recorder, earlier);
  const result = await syncStage({
    client: applyClient,
    inventoryClient: new DryRunRecorder(inventory),
    stageSet: { name: stageSet.metadata.name ?? "", namespace: stageSet.metadata.namespace ?? "" },
    stage: rendered.stage,
    position: rendered.index,
    objects: rendered.objects,
    mode: inventoryMode,
    shardCap: UNUSED_SHARD_CAP,
    dryRun: true,
  });
  const desired = new Map(result.apply.applied.map((obj) => [objectId(obj), obj]));
  const objects: ObjectChange[] = result.apply.entries.map((entry) => {
    const sent = desired.get(entry.id)!;
    const kind = KIND_OF_OUTCOME[entry.action] ?? "update";
    const live = recorder.live.get(entry.id);
    const change: ObjectChange = { kind, ref: entry.ref, merged: kind === "kept" ? sent : (recorder.merged.get(entry.id) ?? live ?? sent) };
    if (live && kind !== "create") change.live = live;
    if (entry.message) change.note = entry.message;
    if (kind === "create") {
      // Not sent to the API server: its kind is installed by an earlier stage, or by a CRD of this stage.
      const notChecked = applyClient.notDryRun.get(entry.id) ?? (recorder.merged.has(entry.id) ? undefined : notDryRunReason(sent.kind, sent.apiVersion, "a CustomResourceDefinition of this stage"));
      if (notChecked) change.notDryRun = notChecked;
    }
    return change;
  });
  const changes: StageChanges = { stage: rendered.stage, index: rendered.index, objects, pruned: result.prune.pruned };
  if (rendered.revision !== undefined) changes.revision = rendered.revision;
  return changes;
}

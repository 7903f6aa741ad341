import { Labels, type KubeObject, type StageSet } from "../api/types.js";
import { applySetMembers, inventoryRefs, PRUNE_DISABLED } from "../apply/prune.js";
import { crdServing, isCrd, kindInfoFromCrd } from "../apply/crds.js";
import { needsApply } from "../apply/drift.js";
import { entriesOf, leftEntries, memberLabels, readStageInventory } from "../apply/inventory.js";
import {
  assertWellFormed,
  describeObject,
  hasLabels,
  managedLabels,
  objectId,
  placeObject,
  refOf,
  sortForApply,
  withLabels,
  type StageSetRef,
} from "../apply/objects.js";
import type { KindInfo, ObjectRef } from "../apply/ports.js";
import type { InventoryMode } from "../config/flags.js";
import { StageFailedError } from "../errors.js";
import type { KubeClient } from "../kube/client.js";
import { KindNotFoundError } from "../kube/errors.js";
import type { ObjectChange, StageChanges } from "./changes.js";
import { previewMerge } from "./preview-merge.js";
import type { RenderedStage } from "./render.js";

/**
 * A stage's changes without any write, not even a dry run (`--server-side=false`,
 * for users without apply RBAC): the rendered objects are placed and labelled
 * as the apply engine would, compared with the live objects by the engine's
 * own drift rule, and merged over them client-side for display. What would be
 * pruned follows the prune's rules (prune: false, the prune-disabled label,
 * objects another stage holds now).
 */
export async function clientSideChanges(
  client: KubeClient,
  inventory: KubeClient,
  stageSet: StageSet,
  rendered: RenderedStage,
  inventoryMode: InventoryMode,
): Promise<StageChanges> {
  const owner: StageSetRef = { name: stageSet.metadata.name ?? "", namespace: stageSet.metadata.namespace ?? "" };
  const stageName = rendered.stage.name;
  const labels = { ...memberLabels(inventoryMode, owner, stageName), ...managedLabels(owner, stageName) };
  const crds = rendered.objects.filter(isCrd);
  const desired: { obj: KubeObject; served: boolean }[] = [];
  for (const obj of rendered.objects) {
    assertWellFormed(obj, stageName);
    const { info, served } = await kindOf(client, obj, crds, stageName);
    desired.push({ obj: withLabels(placeObject(obj, info.namespaced, owner.namespace, stageName), labels), served });
  }
  const servedIds = new Set(desired.filter((d) => d.served).map((d) => objectId(d.obj)));
  const objects: ObjectChange[] = [];
  for (const obj of sortForApply(desired.map((d) => d.obj))) {
    const live = servedIds.has(objectId(obj)) ? await client.get(refOf(obj)) : undefined;
    if (!live) objects.push({ kind: "create", ref: refOf(obj), merged: obj });
    else if (!needsApply(obj, live)) objects.push({ kind: "unchanged", ref: refOf(obj), live, merged: live });
    else objects.push({ kind: "update", ref: refOf(obj), live, merged: previewMerge(live, obj) });
  }
  const pruned = rendered.stage.prune === false ? [] : await wouldPrune(client, inventory, owner, stageName, desired.map((d) => d.obj), inventoryMode);
  const changes: StageChanges = { stage: rendered.stage, index: rendered.index, objects, pruned };
  if (rendered.revision !== undefined) changes.revision = rendered.revision;
  return changes;
}

async function kindOf(client: KubeClient, obj: KubeObject, stageCrds: KubeObject[], stage: string): Promise<{ info: KindInfo; served: boolean }> {
  try {
    return { info: await client.resourceFor(obj.apiVersion, obj.kind), served: true };
  } catch (err) {
    if (!(err instanceof KindNotFoundError)) throw err;
    const crd = crdServing(stageCrds, obj.apiVersion, obj.kind);
    if (!crd) {
      throw new StageFailedError(
        `stage "${stage}": ${describeObject(obj)}: the API server does not serve kind ${obj.kind} in ${obj.apiVersion} and ` +
          `the stage installs no CRD for it; add its CustomResourceDefinition to this stage or an earlier one, or correct apiVersion/kind`,
        { cause: err },
      );
    }
    return { info: kindInfoFromCrd(crd, obj.apiVersion, obj.kind), served: false };
  }
}

async function wouldPrune(
  client: KubeClient,
  inventory: KubeClient,
  owner: StageSetRef,
  stage: string,
  desired: KubeObject[],
  mode: InventoryMode,
): Promise<ObjectRef[]> {
  const previous = await readStageInventory(inventory, owner, stage);
  const entries = entriesOf(desired);
  const now = new Set(entries.map((e) => e.id));
  const candidates =
    mode === "applyset"
      ? (await applySetMembers(client, owner, previous)).filter((ref) => !now.has(objectId(ref)))
      : inventoryRefs({ ...previous, entries: leftEntries(previous.entries, entries) });
  const ours = managedLabels(owner, stage);
  const pruned: ObjectRef[] = [];
  for (const ref of candidates) {
    const live = await client.get(ref).catch((err: unknown) => {
      if (err instanceof KindNotFoundError) return undefined;
      throw err;
    });
    if (!live || live.metadata.labels?.[Labels.prune] === PRUNE_DISABLED || !hasLabels(live, ours)) continue;
    pruned.push(ref);
  }
  return pruned;
}

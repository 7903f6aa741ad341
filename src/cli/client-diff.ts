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
import { EarlierStageCrds, notDryRunReason } from "./earlier-stage-kinds.js";
import { previewMerge } from "./preview-merge.js";
import type { RenderedStage } from "./render.js";

/**
 * A stage's changes without any write, not even a dry run (`--server-side=false`,
 * for users without apply RBAC): the rendered objects are placed and labelled
 * as the apply engine would, compared with the live objects by the engine's
 * own drift rule, and merged over them client-side for display. What would be
 * pruned follows the prune's rules (prune: false, the prune-disabled label,
 * objects another stage holds now). Objects whose kind a CRD of this stage or
 * of an earlier one (`earlier`) installs, and the API server does not serve
 * yet, are shown as created, as rendered, marked `notDryRun`.
 */
export async function clientSideChanges(
  client: KubeClient,
  inventory: KubeClient,
  stageSet: StageSet,
  rendered: RenderedStage,
  inventoryMode: InventoryMode,
  earlier: EarlierStageCrds = new EarlierStageCrds(),
): Promise<StageChanges> {
  const owner: StageSetRef = { name: stageSet.metadata.name ?? "", namespace: stageSet.metadata.namespace ?? "" };
  const stageName = rendered.stage.name;
  const labels = { ...memberLabels(inventoryMode, owner, stageName), ...managedLabels(owner, stageName) };
  const crds = rendered.objects.filter(isCrd);
  const desired: { obj: KubeObject; notServed?: string }[] = [];
  for (const obj of rendered.objects) {
    assertWellFormed(obj, stageName);
    const { info, notServed } = await kindOf(client, obj, crds, earlier, stageName);
    desired.push({ obj: withLabels(placeObject(obj, info.namespaced, owner.namespace, stageName), labels), ...(notServed ? { notServed } : {}) });
  }
  const notServed = new Map(desired.flatMap((d) => (d.notServed ? [[objectId(d.obj), d.notServed] as const] : [])));
  const objects: ObjectChange[] = [];
  for (const obj of sortForApply(desired.map((d) => d.obj))) {
    const why = notServed.get(objectId(obj));
    const live = why === undefined ? await client.get(refOf(obj)) : undefined;
    if (why !== undefined) objects.push({ kind: "create", ref: refOf(obj), merged: obj, notDryRun: why });
    else if (!live) objects.push({ kind: "create", ref: refOf(obj), merged: obj });
    else if (!needsApply(obj, live)) objects.push({ kind: "unchanged", ref: refOf(obj), live, merged: live });
    else objects.push({ kind: "update", ref: refOf(obj), live, merged: previewMerge(live, obj) });
  }
  const pruned = rendered.stage.prune === false ? [] : await wouldPrune(client, inventory, owner, stageName, desired.map((d) => d.obj), inventoryMode);
  const changes: StageChanges = { stage: rendered.stage, index: rendered.index, objects, pruned };
  if (rendered.revision !== undefined) changes.revision = rendered.revision;
  return changes;
}

/**
 * Where the object's kind lives. A kind the API server does not serve yet is
 * described from the CRD of this stage or of an earlier one that will serve
 * it, with `notServed` saying so (its objects cannot exist yet). Throws
 * StageFailedError when no CRD rendered so far serves it.
 */
async function kindOf(
  client: KubeClient,
  obj: KubeObject,
  stageCrds: KubeObject[],
  earlier: EarlierStageCrds,
  stage: string,
): Promise<{ info: KindInfo; notServed?: string }> {
  try {
    return { info: await client.resourceFor(obj.apiVersion, obj.kind) };
  } catch (err) {
    if (!(err instanceof KindNotFoundError)) throw err;
    const crd = crdServing(stageCrds, obj.apiVersion, obj.kind);
    if (crd) {
      return {
        info: kindInfoFromCrd(crd, obj.apiVersion, obj.kind),
        notServed: notDryRunReason(obj.kind, obj.apiVersion, `the CustomResourceDefinition ${crd.metadata.name ?? ""} of this stage`, NOT_COMPARED),
      };
    }
    const before = earlier.serving(obj.apiVersion, obj.kind);
    if (before) {
      return {
        info: kindInfoFromCrd(before.crd, obj.apiVersion, obj.kind),
        notServed: notDryRunReason(obj.kind, obj.apiVersion, `the CustomResourceDefinition ${before.crd.metadata.name ?? ""} of stage "${before.stage}"`, NOT_COMPARED),
      };
    }
    throw new StageFailedError(
      `stage "${stage}": ${describeObject(obj)}: the API server does not serve kind ${obj.kind} in ${obj.apiVersion} and ` +
        `no CRD of this stage or an earlier one defines it; add its CustomResourceDefinition to one of them, or correct apiVersion/kind`,
      { cause: err },
    );
  }
}

// Client-side, nothing is dry-run; such an object is not even looked up.
const NOT_COMPARED = "not compared with the cluster";

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

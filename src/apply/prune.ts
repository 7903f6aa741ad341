import { Labels, type KubeObject } from "../api/types.js";
import { StageFailedError } from "../errors.js";
import { KindNotFoundError } from "../kube/errors.js";
import { ApplySetKeys, MEMBER_KINDS_ANNOTATION, parseMemberKinds, parseNamespaces } from "./applyset.js";
import { forEachBounded } from "./concurrency.js";
import { ObjectOperationError } from "./errors.js";
import { deleteInventories, listInventories, stageApplySetId, type StageInventoryState } from "./inventory.js";
import { apiServerMessage } from "./messages.js";
import { retryTransient } from "./retry.js";
import {
  CRD_KIND,
  describeObject,
  groupOf,
  hasLabels,
  managedLabels,
  NAMESPACE_KIND,
  objectId,
  refFromId,
  sortForDelete,
  type StageSetRef,
} from "./objects.js";
import type { ApplyClient, ObjectRef } from "./ports.js";
import { systemClock, type Clock } from "../util/clock.js";
import { pollUntil } from "../util/poll.js";

export const PRUNE_DISABLED = "disabled";

export type KeepReason = "prune-false" | "prune-disabled-label" | "held-elsewhere" | "kept-by-caller";

/**
 * An inventory entry given up without deleting its object, because no version
 * of its kind is served any more (issue 7 point 3: never silently; the caller
 * emits a Warning event naming the object, from `message`).
 */
export interface DroppedEntry {
  /** The entry as recorded (its apiVersion is the one it was applied with). */
  ref: ObjectRef;
  reason: "kind-not-served";
  /** Names the object and why it could not be pruned, for the event and log. */
  message: string;
}

export interface PruneResult {
  /**
   * Deleted (deletion requested), in deletion order. A ref carries the
   * apiVersion the object was read and deleted through: a served version of
   * its kind when the recorded one is no longer served.
   */
  pruned: ObjectRef[];
  /** Left in place, with the reason. */
  kept: { ref: ObjectRef; reason: KeepReason }[];
  /** Entries dropped because their kind is not served in any version (their objects cannot be read or deleted). */
  dropped: DroppedEntry[];
}

export interface PruneOptions {
  client: ApplyClient;
  stageSet: StageSetRef;
  stage: string;
  /** Objects that left the stage (from the inventory diff or the ApplySet members). */
  candidates: readonly ObjectRef[];
  /** The stage's `prune` (default true). */
  prune?: boolean;
  /** Ids never to delete, e.g. objects a later stage of this StageSet now renders. */
  keep?: ReadonlySet<string>;
  concurrency?: number;
  dryRun?: boolean;
}

/**
 * Deletes objects that left a stage: custom resources and ordinary objects
 * first, then CRDs, Namespaces last. An object is left alone when the stage
 * has `prune: false`, when it carries `stages.metio.wtf/prune: disabled`, or
 * when its labels say another stage or StageSet holds it now.
 *
 * An object whose recorded apiVersion is no longer served (a CRD that stopped
 * serving `v1alpha1`) is read and deleted through a served version of the same
 * group and kind; only when no version serves the kind is its entry given up,
 * and then it is listed in `dropped` (issue 7 point 3: prune never loses an
 * object silently). Throws ObjectOperationError when reading or deleting an
 * object fails (RBACDenied when the identity was refused).
 */
export async function pruneObjects(options: PruneOptions): Promise<PruneResult> {
  const result: PruneResult = { pruned: [], kept: [], dropped: [] };
  if (options.prune === false) {
    result.kept = options.candidates.map((ref) => ({ ref, reason: "prune-false" }));
    return result;
  }
  const ours = managedLabels(options.stageSet, options.stage);
  for (const phase of deletePhases(options.candidates)) {
    await forEachBounded(phase, options.concurrency ?? 10, async (recorded) => {
      if (options.keep?.has(objectId(recorded))) {
        result.kept.push({ ref: recorded, reason: "kept-by-caller" });
        return;
      }
      const read = await readForPrune(options, recorded);
      if ("dropped" in read) {
        result.dropped.push(read.dropped);
        return;
      }
      const { ref, live } = read;
      if (!live) return;
      if (live.metadata.labels?.[Labels.prune] === PRUNE_DISABLED) {
        result.kept.push({ ref, reason: "prune-disabled-label" });
        return;
      }
      if (!hasLabels(live, ours)) {
        result.kept.push({ ref, reason: "held-elsewhere" });
        return;
      }
      if (live.metadata.deletionTimestamp === undefined) {
        try {
          await retryTransient(() => options.client.delete(ref, {
            propagationPolicy: "Background",
            ...(live.metadata.uid ? { preconditions: { uid: live.metadata.uid } } : {}),
            ...(options.dryRun ? { dryRun: true } : {}),
          }));
        } catch (err) {
          throw new ObjectOperationError(
            objectId(ref),
            `stage "${options.stage}": pruning ${describeObject(ref)} failed: ${apiServerMessage(err)}`,
            err,
          );
        }
      }
      result.pruned.push(ref);
    });
  }
  return result;
}

/** Ordinary objects, then CRDs, then Namespaces: each phase finishes before the next starts. */
function deletePhases(refs: readonly ObjectRef[]): ObjectRef[][] {
  const sorted = sortForDelete(refs);
  const isKind = (r: ObjectRef, kind: string, group: string) => r.kind === kind && groupOf(r.apiVersion) === group;
  return [
    sorted.filter((r) => !isKind(r, CRD_KIND, "apiextensions.k8s.io") && !isKind(r, NAMESPACE_KIND, "")),
    sorted.filter((r) => isKind(r, CRD_KIND, "apiextensions.k8s.io")),
    sorted.filter((r) => isKind(r, NAMESPACE_KIND, "")),
  ].filter((phase) => phase.length > 0);
}

/**
 * Reads a prune candidate: through its recorded apiVersion, else through the
 * first served version of its group and kind. Returns the ref that reached it
 * and the live object (undefined: gone), or the dropped entry when no version
 * of the kind is served. Throws ObjectOperationError for any other failure.
 */
async function readForPrune(
  options: PruneOptions,
  recorded: ObjectRef,
): Promise<{ ref: ObjectRef; live: KubeObject | undefined } | { dropped: DroppedEntry }> {
  const read = async (ref: ObjectRef) => {
    try {
      return await retryTransient(() => options.client.get(ref));
    } catch (err) {
      if (err instanceof KindNotFoundError) return NOT_SERVED;
      throw new ObjectOperationError(
        objectId(ref),
        `stage "${options.stage}": reading ${describeObject(ref)} before pruning it failed: ${apiServerMessage(err)}`,
        err,
      );
    }
  };
  const live = await read(recorded);
  if (live !== NOT_SERVED) return { ref: recorded, live };

  // The version it was applied with is no longer served: the same object is
  // still there under the versions its CRD serves now.
  const group = groupOf(recorded.apiVersion);
  let versions: string[];
  try {
    versions = await retryTransient(() => options.client.servedVersions(group, recorded.kind));
  } catch (err) {
    throw new ObjectOperationError(
      objectId(recorded),
      `stage "${options.stage}": ${describeObject(recorded)} was applied as ${recorded.apiVersion}, which is no longer ` +
        `served, and finding a served version of ${recorded.kind} failed: ${apiServerMessage(err)}`,
      err,
    );
  }
  for (const apiVersion of versions) {
    const ref = { ...recorded, apiVersion };
    const found = await read(ref);
    if (found !== NOT_SERVED) return { ref, live: found };
  }
  const where = group === "" ? "the core API" : `group ${group}`;
  return {
    dropped: {
      ref: recorded,
      reason: "kind-not-served",
      message:
        `stage "${options.stage}": ${describeObject(recorded)} left the stage but could not be pruned: no version of ` +
        `kind ${recorded.kind} in ${where} is served any more (it was applied as ${recorded.apiVersion}); its inventory ` +
        `entry was dropped. If its CustomResourceDefinition is re-installed, delete the object by hand`,
    },
  };
}

const NOT_SERVED = Symbol("kind not served");

/** The objects a stage's inventory records (entries and hybrid mode). */
export function inventoryRefs(state: StageInventoryState): ObjectRef[] {
  return state.entries.map((e) => refFromId(e.id, e.v));
}

/**
 * ApplySet members of a stage (applyset mode): each kind the parent lists,
 * selected by the `part-of` label, in the parent's namespace and its
 * additional namespaces (cluster-wide for cluster-scoped kinds).
 */
export async function applySetMembers(
  client: ApplyClient,
  stageSet: StageSetRef,
  state: StageInventoryState,
  extraKinds: readonly { apiVersion: string; kind: string }[] = [],
): Promise<ObjectRef[]> {
  const parent = state.shards[0];
  const annotations = parent?.metadata.annotations ?? {};
  const kinds = new Map<string, { apiVersion: string; kind: string }>();
  for (const k of [...parseMemberKinds(annotations[MEMBER_KINDS_ANNOTATION]), ...extraKinds]) {
    kinds.set(`${k.apiVersion}|${k.kind}`, k);
  }
  const namespaces = [stageSet.namespace, ...parseNamespaces(annotations[ApplySetKeys.additionalNamespaces])];
  const selector = `${ApplySetKeys.partOf}=${stageApplySetId(stageSet, state.stage)}`;
  const members = new Map<string, ObjectRef>();
  for (const recorded of kinds.values()) {
    const k = await servedKind(client, recorded);
    // No version of the kind is served: no object of it exists to be listed.
    if (!k) continue;
    for (const namespace of k.namespaced ? namespaces : [undefined]) {
      const { items } = await retryTransient(() =>
        client.listAll(k.apiVersion, k.kind, { ...(namespace ? { namespace } : {}), labelSelector: selector }),
      );
      for (const item of items) {
        const ref: ObjectRef = { apiVersion: k.apiVersion, kind: k.kind, name: item.metadata.name! };
        if (item.metadata.namespace) ref.namespace = item.metadata.namespace;
        // The same kind may be listed under two versions (recorded and served).
        if (!members.has(objectId(ref))) members.set(objectId(ref), ref);
      }
    }
  }
  return [...members.values()];
}

/**
 * `k` at its recorded apiVersion when that is served, else at the first
 * served version of its group and kind; undefined when no version serves it.
 * Discovery failures other than "not served" are thrown.
 */
async function servedKind(
  client: ApplyClient,
  k: { apiVersion: string; kind: string },
): Promise<{ apiVersion: string; kind: string; namespaced: boolean } | undefined> {
  const at = async (apiVersion: string) => {
    try {
      return { apiVersion, kind: k.kind, namespaced: (await client.resourceFor(apiVersion, k.kind)).namespaced };
    } catch (err) {
      if (err instanceof KindNotFoundError) return undefined;
      throw err;
    }
  };
  const own = await at(k.apiVersion);
  if (own) return own;
  for (const apiVersion of await retryTransient(() => client.servedVersions(groupOf(k.apiVersion), k.kind))) {
    const other = await at(apiVersion);
    if (other) return other;
  }
  return undefined;
}

/**
 * Polls until every object is gone (or replaced by a new one), every
 * `intervalMs` (default 250) up to `timeoutMs` on `clock` (default the system
 * clock). Throws StageFailedError naming the objects still there (and their
 * finalizers) at the timeout; API errors other than transient ones propagate.
 */
export async function waitUntilGone(
  client: ApplyClient,
  refs: readonly ObjectRef[],
  options: { timeoutMs: number; what: string; concurrency?: number; intervalMs?: number; clock?: Clock },
): Promise<void> {
  let pending = [...refs];
  let still: { ref: ObjectRef; live: KubeObject }[] = [];
  await pollUntil(
    options.clock ?? systemClock,
    {
      timeoutMs: options.timeoutMs,
      intervalMs: options.intervalMs ?? 250,
      onTimeout: () => {
        const named = still
          .slice(0, 5)
          .map(({ ref, live }) => {
            const f = live.metadata.finalizers ?? [];
            return f.length ? `${describeObject(ref)} (finalizers: ${f.join(", ")})` : describeObject(ref);
          })
          .join(", ");
        const more = still.length > 5 ? ` and ${still.length - 5} more` : "";
        return new StageFailedError(
          `${options.what}: ${named}${more} still exist ${options.timeoutMs}ms after deletion; ` +
            `the next run waits for them again`,
        );
      },
    },
    async () => {
      still = [];
      await forEachBounded(pending, options.concurrency ?? 10, async (ref) => {
        let live: KubeObject | undefined;
        try {
          live = await retryTransient(() => client.get(ref));
        } catch (err) {
          if (!(err instanceof KindNotFoundError)) throw err;
        }
        if (live) still.push({ ref, live });
      });
      pending = still.map((s) => s.ref);
      return still.length === 0 ? true : undefined;
    },
  );
}

export interface TeardownOptions {
  /** Deletes the objects (the tenant's identity, possibly in a remote cluster). */
  client: ApplyClient;
  /** Where the StageInventory objects live; default `client`. */
  inventoryClient?: ApplyClient;
  stageSet: StageSetRef;
  /** `prune` of each stage in the spec; a stage missing here (removed from the spec) is pruned. */
  pruneByStage?: ReadonlyMap<string, boolean>;
  /** Tear down only these stages (e.g. stages removed from the spec); default every recorded stage. */
  onlyStages?: ReadonlySet<string>;
  /** Per stage: how long to wait for its objects to be gone; default 5 minutes. */
  timeoutMs?: number;
  concurrency?: number;
  /** Times the wait for each stage's objects to be gone; default the system clock. */
  clock?: Clock;
}

export interface TeardownResult {
  /** Stage names in the order they were torn down (last stage first). */
  stages: string[];
  deleted: ObjectRef[];
  kept: { ref: ObjectRef; reason: KeepReason }[];
  /** Entries given up because no version of their kind is served (see {@link PruneResult.dropped}). */
  dropped: DroppedEntry[];
}

/**
 * The finalizer's work: deletes each stage's objects in reverse stage order,
 * waiting until a stage's objects are gone before the stage before it, then
 * deletes that stage's StageInventory. `prune: false` stages and objects
 * labelled `prune: disabled` or held by someone else are left in place (their
 * inventory is still removed). Safe to call again after a failure: finished
 * stages no longer have an inventory.
 */
export async function teardown(options: TeardownOptions): Promise<TeardownResult> {
  const { client, stageSet } = options;
  const inventoryClient = options.inventoryClient ?? client;
  const states = [...(await listInventories(inventoryClient, stageSet)).values()]
    .filter((s) => !options.onlyStages || options.onlyStages.has(s.stage))
    .sort((a, b) => b.position - a.position);
  const result: TeardownResult = { stages: [], deleted: [], kept: [], dropped: [] };
  for (const state of states) {
    const refs = state.entries.length > 0 ? inventoryRefs(state) : await applySetMembers(client, stageSet, state);
    const pruned = await pruneObjects({
      client,
      stageSet,
      stage: state.stage,
      candidates: refs,
      prune: options.pruneByStage?.get(state.stage) ?? true,
      concurrency: options.concurrency,
    });
    await waitUntilGone(client, pruned.pruned, {
      timeoutMs: options.timeoutMs ?? 300_000,
      what: `tearing down stage "${state.stage}" of StageSet ${stageSet.namespace}/${stageSet.name}`,
      concurrency: options.concurrency,
      ...(options.clock ? { clock: options.clock } : {}),
    });
    await deleteInventories(inventoryClient, state);
    result.stages.push(state.stage);
    result.deleted.push(...pruned.pruned);
    result.kept.push(...pruned.kept);
    result.dropped.push(...pruned.dropped);
  }
  return result;
}

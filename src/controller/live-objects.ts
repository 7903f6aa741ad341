import type { KubeObject } from "../api/types.js";
import { forEachBounded } from "../apply/concurrency.js";
import type { KubeClient } from "../kube/client.js";
import { objectId, type ObjectRef } from "../health/index.js";

/** Above this many objects of one kind in one namespace, one list is cheaper than GETs. */
const LIST_THRESHOLD = 3;
const CONCURRENCY = 8;

interface Target {
  /** The id the health plan looks the object up by (the ref as given). */
  id: string;
  name: string;
}

interface Group {
  apiVersion: string;
  kind: string;
  namespace: string | undefined;
  targets: Target[];
}

/**
 * Reads the live state of `targets` for the health check: where a stage has
 * several objects of a kind in a namespace, one list of them selected by
 * `managedSelector` (the labels the stage put on what it applied), so the
 * read follows the stage's size and not the namespace's; GETs otherwise,
 * and for any target that list did not return (an object whose labels were
 * removed by hand is still found, and a missing one is confirmed missing).
 * A namespaced target without a namespace is looked up in
 * `defaultNamespace`. Missing objects map to undefined.
 */
export async function fetchLiveObjects(
  client: KubeClient,
  targets: readonly ObjectRef[],
  defaultNamespace: string,
  managedSelector: string,
  signal?: AbortSignal,
): Promise<Map<string, KubeObject | undefined>> {
  const live = new Map<string, KubeObject | undefined>();
  const groups = new Map<string, Group>();
  for (const ref of targets) {
    const info = await client.resourceFor(ref.apiVersion, ref.kind).catch(() => undefined);
    if (!info) {
      live.set(objectId(ref), undefined);
      continue;
    }
    const namespace = info.namespaced ? (ref.namespace ?? defaultNamespace) : undefined;
    const key = `${ref.apiVersion}|${ref.kind}|${namespace ?? ""}`;
    const group = groups.get(key) ?? { apiVersion: ref.apiVersion, kind: ref.kind, namespace, targets: [] };
    group.targets.push({ id: objectId(ref), name: ref.name });
    groups.set(key, group);
  }
  const getEach = (group: Group, targets: readonly Target[]) =>
    targets.map((t) => async () => {
      live.set(t.id, await client.get({ apiVersion: group.apiVersion, kind: group.kind, namespace: group.namespace, name: t.name }));
    });
  const lists: (() => Promise<void>)[] = [];
  const gets: (() => Promise<void>)[] = [];
  for (const group of groups.values()) {
    if (group.targets.length > LIST_THRESHOLD) {
      lists.push(async () => {
        const list = await client.listAll(group.apiVersion, group.kind, { namespace: group.namespace, labelSelector: managedSelector, signal });
        const byName = new Map(list.items.map((o) => [o.metadata.name, o]));
        const unlisted = group.targets.filter((t) => !byName.has(t.name));
        for (const t of group.targets) if (byName.has(t.name)) live.set(t.id, byName.get(t.name));
        gets.push(...getEach(group, unlisted));
      });
    } else {
      gets.push(...getEach(group, group.targets));
    }
  }
  const run = (task: () => Promise<void>) => task();
  await forEachBounded(lists, CONCURRENCY, run);
  await forEachBounded(gets, CONCURRENCY, run);
  return live;
}

/** Reads the live objects of `targets` (as fetchLiveObjects does). */
export type LiveFetch = (targets: readonly ObjectRef[], signal?: AbortSignal) => Promise<Map<string, KubeObject | undefined>>;

/**
 * A LiveFetch whose first call answers from `observed` (objectId → the
 * object as the API server returned it from this stage's apply) and reads
 * only the targets it lacks with `fetch`; later calls read everything with
 * `fetch`. The apply's answer is the live object at that moment, so the
 * first health evaluation right after an apply needs no read of it: a stage
 * whose objects are Current as applied (ConfigMaps, Services, RBAC) is
 * verified without a request, and a labelled list per kind and namespace —
 * which the API server answers by scanning every object of that kind in the
 * namespace — is left to the stages that have to wait.
 */
export function firstFromObserved(observed: ReadonlyMap<string, KubeObject>, fetch: LiveFetch): LiveFetch {
  let first = true;
  return async (targets, signal) => {
    if (!first) return fetch(targets, signal);
    first = false;
    const live = new Map<string, KubeObject | undefined>();
    const unknown: ObjectRef[] = [];
    for (const target of targets) {
      const id = objectId(target);
      const seen = observed.get(id);
      if (seen) live.set(id, seen);
      else unknown.push(target);
    }
    if (unknown.length > 0) for (const [id, obj] of await fetch(unknown, signal)) live.set(id, obj);
    return live;
  };
}

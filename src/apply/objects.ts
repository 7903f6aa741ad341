import { Labels, type KubeObject } from "../api/types.js";
import { InvalidManifestError } from "./errors.js";
import type { KindInfo, ObjectRef } from "./ports.js";

/** The StageSet that owns a stage's objects. */
export interface StageSetRef {
  name: string;
  namespace: string;
}

/** An object id split into its parts (see {@link objectId}). */
export interface ObjectIdParts {
  /** "" for cluster-scoped objects. */
  namespace: string;
  name: string;
  /** "" for the core group. */
  group: string;
  kind: string;
}

export const CRD_KIND = "CustomResourceDefinition";
export const CRD_GROUP = "apiextensions.k8s.io";
export const NAMESPACE_KIND = "Namespace";

/** `apps/v1` → `apps`; `v1` → "" (core). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? "" : apiVersion.slice(0, slash);
}

/** The reference of a rendered or live object. */
export function refOf(obj: KubeObject): ObjectRef {
  const ref: ObjectRef = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata?.name ?? "" };
  if (obj.metadata?.namespace) ref.namespace = obj.metadata.namespace;
  return ref;
}

function isKubeObject(x: KubeObject | ObjectRef): x is KubeObject {
  return "metadata" in x && typeof x.metadata === "object" && x.metadata !== null;
}

/**
 * The inventory id of an object: `namespace_name_group_kind`, with an empty
 * namespace for cluster-scoped and an empty group for core objects. None of
 * the four parts can contain `_` (DNS names and kind identifiers), so the id
 * splits back unambiguously.
 */
export function objectId(x: KubeObject | ObjectRef): string {
  const ref = isKubeObject(x) ? refOf(x) : x;
  return `${ref.namespace ?? ""}_${ref.name}_${groupOf(ref.apiVersion)}_${ref.kind}`;
}

export function parseObjectId(id: string): ObjectIdParts {
  const parts = id.split("_");
  if (parts.length !== 4 || !parts[1] || !parts[3]) {
    throw new InvalidManifestError(`"${id}" is not an inventory id of the form namespace_name_group_kind`);
  }
  const [namespace, name, group, kind] = parts as [string, string, string, string];
  return { namespace, name, group, kind };
}

/** The object reference an inventory entry points at. */
export function refFromId(id: string, apiVersion: string): ObjectRef {
  const { namespace, name, kind } = parseObjectId(id);
  const ref: ObjectRef = { apiVersion, kind, name };
  if (namespace) ref.namespace = namespace;
  return ref;
}

/** `Deployment payments/web`, `Namespace payments` — how messages name an object. */
export function describeObject(x: KubeObject | ObjectRef): string {
  const ref = isKubeObject(x) ? refOf(x) : x;
  const group = groupOf(ref.apiVersion);
  const kind = group && !isWellKnownGroup(group) ? `${ref.kind}.${group}` : ref.kind;
  return ref.namespace ? `${kind} ${ref.namespace}/${ref.name}` : `${kind} ${ref.name}`;
}

const WELL_KNOWN_GROUP = /(^|\.)k8s\.io$|^(apps|batch|policy|autoscaling)$/;
function isWellKnownGroup(group: string): boolean {
  return WELL_KNOWN_GROUP.test(group);
}

/** The labels every managed object carries (CONTRACT.md "Labels and annotations"). */
export function managedLabels(owner: StageSetRef, stage: string): Record<string, string> {
  return {
    [Labels.ownerName]: owner.name,
    [Labels.ownerNamespace]: owner.namespace,
    [Labels.stage]: stage,
  };
}

/** `k=v,k2=v2` for a list call. */
export function labelSelector(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

/** Whether the live object carries exactly the given labels. */
export function hasLabels(obj: KubeObject, labels: Record<string, string>): boolean {
  const live = obj.metadata.labels ?? {};
  return Object.entries(labels).every(([k, v]) => live[k] === v);
}

/** A copy of `obj` with `labels` merged over its own (ours win). */
export function withLabels(obj: KubeObject, labels: Record<string, string>): KubeObject {
  return { ...obj, metadata: { ...obj.metadata, labels: { ...obj.metadata.labels, ...labels } } };
}

/** Checks the fields an object needs before anything is sent for it. */
export function assertWellFormed(obj: KubeObject, stage: string): void {
  const metadata: unknown = obj?.metadata;
  const name: unknown = typeof metadata === "object" && metadata !== null ? (metadata as { name?: unknown }).name : undefined;
  const kind: unknown = obj?.kind;
  const shownKind = typeof kind === "string" && kind ? kind : "<no kind>";
  if (typeof obj?.apiVersion !== "string" || !obj.apiVersion || typeof kind !== "string" || !kind || !name) {
    const what = `${shownKind} ${typeof name === "string" && name ? name : "<no name>"}`;
    throw new InvalidManifestError(
      `stage "${stage}": rendered object ${what} lacks apiVersion, kind or metadata.name; fix the manifest in the stage's source`,
    );
  }
  // Identity fields are used as strings everywhere (ids, URLs, messages): say so rather than send "[object Object]".
  const namespace: unknown = (metadata as { namespace?: unknown }).namespace;
  for (const [field, value] of [["name", name], ["namespace", namespace]] as const) {
    if (value !== undefined && value !== null && typeof value !== "string") {
      const shown = typeof name === "string" ? `${shownKind} ${name}` : `a ${shownKind}`;
      throw new InvalidManifestError(
        `stage "${stage}": rendered object ${shown} has a metadata.${field} that is ${Array.isArray(value) ? "a list" : `a ${typeof value === "object" ? "map" : typeof value}`}, not a string; fix the manifest in the stage's source`,
      );
    }
  }
}

/**
 * Places an object in its namespace as discovery says: a namespaced object
 * without one goes to `defaultNamespace` (the StageSet's); a cluster-scoped
 * object must not name one.
 */
export function placeObject(obj: KubeObject, namespaced: boolean, defaultNamespace: string, stage: string): KubeObject {
  if (namespaced) {
    if (obj.metadata.namespace) return obj;
    return { ...obj, metadata: { ...obj.metadata, namespace: defaultNamespace } };
  }
  if (obj.metadata.namespace) {
    throw new InvalidManifestError(
      `stage "${stage}": ${describeObject({ apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name ?? "" })} is cluster-scoped but sets metadata.namespace "${obj.metadata.namespace}"; ` +
        `remove the namespace from the manifest (or from the kustomization's namespace transformer for this kind)`,
    );
  }
  return obj;
}

/** Fails naming both copies when two rendered objects have the same identity. */
export function assertNoDuplicates(objects: readonly KubeObject[], stage: string): void {
  const seen = new Map<string, KubeObject>();
  for (const obj of objects) {
    const id = objectId(obj);
    const first = seen.get(id);
    if (first) {
      throw new InvalidManifestError(
        `stage "${stage}": ${describeObject(first)} (${first.apiVersion}) and ${describeObject(obj)} (${obj.apiVersion}) ` +
          `are the same object rendered twice; remove one of them from the stage's manifests`,
      );
    }
    seen.set(id, obj);
  }
}

// Kinds other objects depend on come first, roughly Helm's install order;
// everything unlisted follows in its rendered order.
const APPLY_ORDER = [
  CRD_KIND,
  NAMESPACE_KIND,
  "ResourceQuota",
  "LimitRange",
  "PriorityClass",
  "ServiceAccount",
  "Secret",
  "ConfigMap",
  "StorageClass",
  "PersistentVolume",
  "PersistentVolumeClaim",
  "ClusterRole",
  "ClusterRoleBinding",
  "Role",
  "RoleBinding",
  "Service",
];
const UNLISTED_RANK = APPLY_ORDER.length;

function applyRank(kind: string): number {
  const i = APPLY_ORDER.indexOf(kind);
  return i < 0 ? UNLISTED_RANK : i;
}

/** Whether the object must exist before the rest of a stage is applied. */
export function isFoundational(x: KubeObject | ObjectRef): boolean {
  const group = groupOf(x.apiVersion);
  return (x.kind === CRD_KIND && group === CRD_GROUP) || (x.kind === NAMESPACE_KIND && group === "");
}

/** CRDs, then Namespaces, then the rest by kind, keeping the rendered order within a kind rank. */
export function sortForApply<T extends KubeObject | ObjectRef>(objects: readonly T[]): T[] {
  return [...objects].sort((a, b) => applyRank(a.kind) - applyRank(b.kind));
}

/**
 * The order to delete in: the reverse of the apply order, except that
 * Namespaces go last (deleting one deletes everything in it) and CRDs just
 * before them (deleting one deletes every custom resource of its kind).
 */
export function sortForDelete<T extends KubeObject | ObjectRef>(objects: readonly T[]): T[] {
  const deleteRank = (x: T): number => {
    if (x.kind === NAMESPACE_KIND && groupOf(x.apiVersion) === "") return UNLISTED_RANK + 2;
    if (x.kind === CRD_KIND && groupOf(x.apiVersion) === CRD_GROUP) return UNLISTED_RANK + 1;
    return UNLISTED_RANK - applyRank(x.kind);
  };
  return [...objects].reverse().sort((a, b) => deleteRank(a) - deleteRank(b));
}

/** The discovery info for a kind, keyed the way the engine caches it. */
export function kindKey(apiVersion: string, kind: string): string {
  return `${apiVersion}|${kind}`;
}

export type { KindInfo };

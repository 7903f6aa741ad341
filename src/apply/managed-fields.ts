import { FIELD_MANAGER, type KubeObject } from "../api/types.js";

/**
 * Field ownership from `metadata.managedFields` (server-side apply, KEP-555).
 *
 * The containment check in drift.ts answers "does the live object hold what
 * we set?"; this module answers the other half: "is every field we own still
 * set by the desired object?". A field our manager owns that the new revision
 * no longer sets is removed by the API server on the next apply, so it is
 * drift. Fields other managers own are never looked at.
 *
 * `fieldsV1` is a tree of path elements (structured-merge-diff's
 * `FieldsV1`): `f:<name>` a map field, `k:<json>` a list item identified by
 * its key fields, `v:<json>` a set item by value, `i:<n>` a list item by
 * index, and `.` the node itself.
 *
 * Left out on purpose: we never compare values here (containment does), and
 * a `k:` key field the desired item does not set matches anything unless the
 * API server has a known default for it (`protocol: TCP`), so an item whose
 * key the server completes is not mistaken for a removed one.
 */

/** Managers whose ownership a takeover moves to ours (client-side `kubectl apply`), as Flux does. */
export const CLIENT_SIDE_APPLY_MANAGERS: ReadonlySet<string> = new Set(["kubectl-client-side-apply", "before-first-apply"]);
export const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

/** One `metadata.managedFields` entry, as the API server returns it. */
export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  time?: string;
  fieldsType?: string;
  fieldsV1?: FieldsV1;
  subresource?: string;
}

export type FieldsV1 = { [element: string]: FieldsV1 };

type Json = unknown;

// Defaults the API server fills into list-item keys (ports are keyed by port and protocol).
const KEY_DEFAULTS: Record<string, Json> = { protocol: "TCP" };

// Never part of an apply configuration's identity; the server records them for create only.
const IGNORED_METADATA = new Set(["name", "namespace", "generateName", "uid", "resourceVersion", "creationTimestamp"]);

function isPlainObject(x: Json): x is Record<string, Json> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** The `managedFields` entries of `obj` (empty when there are none). */
export function managedFieldsOf(obj: KubeObject): ManagedFieldsEntry[] {
  const entries = (obj.metadata as { managedFields?: unknown }).managedFields;
  return Array.isArray(entries) ? (entries.filter(isPlainObject) as ManagedFieldsEntry[]) : [];
}

/** The field set `manager` owns through `Apply` on the main resource, or undefined when it owns nothing. */
export function appliedFieldsOf(obj: KubeObject, manager = FIELD_MANAGER): FieldsV1 | undefined {
  const entry = managedFieldsOf(obj).find(
    (e) => e.manager === manager && e.operation === "Apply" && !e.subresource && isPlainObject(e.fieldsV1),
  );
  return entry?.fieldsV1;
}

/**
 * Paths (at most `limit`, dotted for messages) that `manager` owns in `live`
 * through Apply but `desired` no longer sets: each would be removed by the
 * next apply. Empty when the manager owns nothing or every owned field is
 * still set. `desired` must be the object as it will be sent (stringData
 * already folded into data, labels stamped).
 */
export function unsetOwnedFields(desired: KubeObject, live: KubeObject, limit = 1, manager = FIELD_MANAGER): string[] {
  const owned = appliedFieldsOf(live, manager);
  if (!owned) return [];
  const found: string[] = [];
  walk(owned, desired, live, "", found, limit, true);
  return found;
}

// `live` is the live value at the same path: an owned field the desired
// object sets to null is removed by the apply, so it is drift only while it
// still has a value (the server keeps recording ownership of a null).
function walk(node: FieldsV1, desired: Json, live: Json, path: string, found: string[], limit: number, top: boolean): void {
  for (const [element, child] of Object.entries(node)) {
    if (found.length >= limit) return;
    if (element === ".") continue;
    const kind = element.slice(0, 2);
    const rest = element.slice(2);
    if (kind === "f:") {
      if (top && (rest === "apiVersion" || rest === "kind")) continue;
      if (path === "metadata" && IGNORED_METADATA.has(rest)) continue;
      const value = isPlainObject(desired) ? desired[rest] : undefined;
      const liveValue = isPlainObject(live) ? live[rest] : undefined;
      const at = path ? `${path}.${rest}` : rest;
      if (value === undefined || (value === null && liveValue !== undefined && liveValue !== null)) {
        found.push(at);
        continue;
      }
      if (value === null) continue;
      walk(child, value, liveValue, at, found, limit, false);
    } else if (kind === "k:") {
      const key = parseJson(rest);
      const items = Array.isArray(desired) ? desired : [];
      const match = isPlainObject(key) ? items.find((item) => matchesKey(item, key)) : undefined;
      const liveMatch = isPlainObject(key) && Array.isArray(live) ? live.find((item) => matchesKey(item, key)) : undefined;
      const at = `${path}[${describeKey(key)}]`;
      if (match === undefined) {
        found.push(at);
        continue;
      }
      walk(child, match, liveMatch, at, found, limit, false);
    } else if (kind === "v:") {
      const value = parseJson(rest);
      const items = Array.isArray(desired) ? desired : [];
      if (!items.some((item) => sameJson(item, value))) found.push(`${path}[${rest}]`);
    } else if (kind === "i:") {
      const index = Number(rest);
      const item = Array.isArray(desired) ? desired[index] : undefined;
      const at = `${path}[${index}]`;
      if (item === undefined || item === null) {
        found.push(at);
        continue;
      }
      walk(child, item, Array.isArray(live) ? live[index] : undefined, at, found, limit, false);
    }
  }
}

function matchesKey(item: Json, key: Record<string, Json>): boolean {
  if (!isPlainObject(item)) return false;
  for (const [field, wanted] of Object.entries(key)) {
    const value = item[field] ?? KEY_DEFAULTS[field];
    if (value === undefined) continue;
    if (!sameScalar(value, wanted)) return false;
  }
  return true;
}

// int-or-string: a port written 8080 and keyed "8080" is the same item.
function sameScalar(a: Json, b: Json): boolean {
  if (a === b) return true;
  if ((typeof a === "number" || typeof a === "string") && (typeof b === "number" || typeof b === "string")) return String(a) === String(b);
  return sameJson(a, b);
}

function sameJson(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function parseJson(text: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

function describeKey(key: Json): string {
  if (!isPlainObject(key)) return String(key);
  return Object.entries(key)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(",");
}

/**
 * `live` without the fields `manager` owns that `desired` no longer sets:
 * what the API server leaves after applying `desired` (for the client-side
 * preview of `diff`). Fields other managers co-own are removed too, which
 * errs towards showing a removal the server might keep.
 */
export function withoutUnsetOwnedFields(live: KubeObject, desired: KubeObject, manager = FIELD_MANAGER): KubeObject {
  const owned = appliedFieldsOf(live, manager);
  if (!owned) return live;
  const copy = structuredClone(live) as unknown as Record<string, Json>;
  prune(owned, copy, desired, "");
  return copy as unknown as KubeObject;
}

function prune(node: FieldsV1, live: Json, desired: Json, path: string): void {
  for (const [element, child] of Object.entries(node)) {
    if (element === ".") continue;
    const kind = element.slice(0, 2);
    const rest = element.slice(2);
    if (kind === "f:" && isPlainObject(live)) {
      if (path === "" && (rest === "apiVersion" || rest === "kind")) continue;
      if (path === "metadata" && IGNORED_METADATA.has(rest)) continue;
      const want = isPlainObject(desired) ? desired[rest] : undefined;
      if (want === undefined || want === null) delete live[rest];
      else prune(child, live[rest], want, `${path}.${rest}`);
    } else if (kind === "k:" && Array.isArray(live)) {
      const key = parseJson(rest);
      if (!isPlainObject(key)) continue;
      const index = live.findIndex((item) => matchesKey(item, key));
      if (index < 0) continue;
      const want = Array.isArray(desired) ? desired.find((item) => matchesKey(item, key)) : undefined;
      if (want === undefined) live.splice(index, 1);
      else prune(child, live[index], want, `${path}[]`);
    } else if (kind === "v:" && Array.isArray(live)) {
      const value = parseJson(rest);
      const wanted = Array.isArray(desired) && desired.some((item) => sameJson(item, value));
      const index = live.findIndex((item) => sameJson(item, value));
      if (!wanted && index >= 0) live.splice(index, 1);
    }
  }
}

/** True when `live` was last written by client-side `kubectl apply` and a takeover must move that ownership to us. */
export function needsTakeover(live: KubeObject): boolean {
  if (live.metadata.annotations?.[LAST_APPLIED_ANNOTATION] !== undefined) return true;
  return managedFieldsOf(live).some((e) => e.manager !== undefined && CLIENT_SIDE_APPLY_MANAGERS.has(e.manager));
}

/**
 * The merge patch that takes an object over from client-side `kubectl apply`
 * (Flux's cleanup of `kubectl` managers): the field sets of
 * `kubectl-client-side-apply` and `before-first-apply` are merged into
 * `manager`'s Apply entry, their entries removed, and the
 * `last-applied-configuration` annotation dropped. With that ownership ours,
 * the next apply removes what the artifact no longer sets. Returns undefined
 * when there is nothing to take over.
 */
export function takeoverPatch(live: KubeObject, manager = FIELD_MANAGER): Record<string, Json> | undefined {
  if (!needsTakeover(live)) return undefined;
  const entries = managedFieldsOf(live);
  const legacy = entries.filter((e) => e.manager !== undefined && CLIENT_SIDE_APPLY_MANAGERS.has(e.manager) && !e.subresource);
  const metadata: Record<string, Json> = {};
  if (legacy.length > 0) {
    const ours = entries.find((e) => e.manager === manager && e.operation === "Apply" && !e.subresource);
    let fields: FieldsV1 = structuredClone(ours?.fieldsV1 ?? {});
    for (const e of legacy) fields = unionFields(fields, e.fieldsV1 ?? {});
    const kept = entries.filter((e) => !legacy.includes(e) && e !== ours);
    const merged: ManagedFieldsEntry = {
      manager,
      operation: "Apply",
      apiVersion: ours?.apiVersion ?? legacy[0]?.apiVersion ?? live.apiVersion,
      fieldsType: "FieldsV1",
      fieldsV1: fields,
      ...(ours?.time ?? legacy[0]?.time ? { time: ours?.time ?? legacy[0]?.time } : {}),
    };
    metadata.managedFields = [...kept, merged];
  }
  if (live.metadata.annotations?.[LAST_APPLIED_ANNOTATION] !== undefined) {
    metadata.annotations = { [LAST_APPLIED_ANNOTATION]: null };
  }
  // Optimistic concurrency: a writer in between makes the patch fail instead of losing its fields.
  if (live.metadata.resourceVersion) metadata.resourceVersion = live.metadata.resourceVersion;
  return { metadata };
}

/** The union of two field sets. */
export function unionFields(a: FieldsV1, b: FieldsV1): FieldsV1 {
  const out: FieldsV1 = { ...a };
  for (const [element, child] of Object.entries(b)) {
    out[element] = element in out ? unionFields(out[element]!, child) : structuredClone(child);
  }
  return out;
}

/**
 * Secret `stringData` folded into `data`, as the API server stores it. We
 * apply `data` so that we own its keys: a key dropped from `stringData`
 * would otherwise stay live, because the server records ownership of
 * `stringData.<key>` but stores the value under `data` (what pkg/ssa does too).
 */
export function foldStringData(obj: KubeObject): KubeObject {
  if (obj.kind !== "Secret" || obj.apiVersion !== "v1" || !isPlainObject(obj.stringData)) return obj;
  const data: Record<string, Json> = { ...(isPlainObject(obj.data) ? obj.data : {}) };
  for (const [k, v] of Object.entries(obj.stringData)) data[k] = Buffer.from(String(v), "utf8").toString("base64");
  const { stringData: _folded, ...rest } = obj;
  return { ...rest, data } as KubeObject;
}

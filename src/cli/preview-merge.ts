import type { KubeObject } from "../api/types.js";
import { foldStringData, withoutUnsetOwnedFields } from "../apply/managed-fields.js";

type Json = unknown;

// List items carrying one of these (distinct values) are matched by it, like
// the API server's associative lists (containers by name, ports by port).
const MERGE_KEYS = ["name", "containerPort", "mountPath", "devicePath", "port"];

/**
 * An approximation of a server-side apply, for `diff --server-side=false`:
 * the live object with every field the rendered object sets laid over it.
 * Maps merge key by key; lists whose items share a merge key merge item by
 * item (items only the live object has stay, as another manager's would);
 * other lists and scalars take the rendered value. `null` in the rendered
 * object means "no opinion". Fields our field manager owns that the rendered
 * object no longer sets are removed first, as the apply would remove them.
 * Secret `stringData` is folded into `data` as the API server stores it.
 */
export function previewMerge(live: KubeObject, desired: KubeObject): KubeObject {
  const stored = foldStringData(desired);
  return merge(withoutUnsetOwnedFields(live, stored), stored) as KubeObject;
}

function merge(live: Json, desired: Json): Json {
  if (desired === undefined || desired === null) return live;
  if (isPlainObject(desired)) {
    const out: Record<string, Json> = isPlainObject(live) ? { ...live } : {};
    for (const [key, value] of Object.entries(desired)) {
      const merged = merge(out[key], value);
      if (merged !== undefined) out[key] = merged;
    }
    return out;
  }
  if (Array.isArray(desired) && Array.isArray(live)) {
    const key = mergeKeyOf(desired);
    if (!key) return desired;
    const wanted = new Map(desired.map((item) => [(item as Record<string, Json>)[key], item]));
    const liveByKey = new Map(live.filter(isPlainObject).map((item) => [item[key], item]));
    const mergedDesired = desired.map((item) => merge(liveByKey.get((item as Record<string, Json>)[key]), item));
    const othersOnly = live.filter((item) => !isPlainObject(item) || !wanted.has(item[key]));
    return [...mergedDesired, ...othersOnly];
  }
  return desired;
}

function mergeKeyOf(items: Json[]): string | undefined {
  if (items.length === 0 || !items.every(isPlainObject)) return undefined;
  const objects = items as Record<string, Json>[];
  return MERGE_KEYS.find((candidate) => {
    const values = objects.map((o) => o[candidate]);
    return values.every((v) => typeof v === "string" || typeof v === "number") && new Set(values).size === values.length;
  });
}

function isPlainObject(x: Json): x is Record<string, Json> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

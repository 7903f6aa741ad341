import { createHash } from "node:crypto";
import type { KubeObject } from "../api/types.js";

/** What a Secret value shows as unless `--show-secrets` is given. */
export const MASK = "***";

const MASKED_FIELDS = ["data", "stringData"] as const;
// Diffs compare masked text: a fingerprint of each value keeps a changed
// value visible to the comparison, and is removed before anything is shown.
const FINGERPRINT = /\*\*\*\[fingerprint:[0-9a-f]{16}\]/g;

export function isSecret(obj: KubeObject): boolean {
  return obj.kind === "Secret" && obj.apiVersion === "v1";
}

/** A copy of `obj` whose Secret `data` and `stringData` values read `***`; other objects are returned as they are. */
export function maskSecret(obj: KubeObject): KubeObject {
  return replaceValues(obj, () => MASK);
}

/**
 * Like {@link maskSecret}, but each value becomes `***` plus a fingerprint of
 * the value, so two versions of a Secret still differ where a value changed.
 * Pass the text through {@link hideFingerprints} before printing it.
 */
export function maskSecretForDiff(obj: KubeObject): KubeObject {
  return replaceValues(obj, (value) => `${MASK}[fingerprint:${createHash("sha256").update(value).digest("hex").slice(0, 16)}]`);
}

export function hideFingerprints(text: string): string {
  return text.replace(FINGERPRINT, MASK);
}

/** Whether a masked object hid anything (to say so next to it). */
export function hasMaskedValues(obj: KubeObject): boolean {
  return isSecret(obj) && MASKED_FIELDS.some((field) => isStringMap(obj[field]) && Object.keys(obj[field] as object).length > 0);
}

function replaceValues(obj: KubeObject, replace: (value: string) => string): KubeObject {
  if (!isSecret(obj)) return obj;
  const copy: KubeObject = { ...obj };
  for (const field of MASKED_FIELDS) {
    const values = obj[field];
    if (!isStringMap(values)) continue;
    copy[field] = Object.fromEntries(Object.entries(values).map(([key, value]) => [key, replace(String(value))]));
  }
  return copy;
}

function isStringMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

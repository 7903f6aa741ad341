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

/**
 * A copy of `obj` whose Secret `data` and `stringData` values, and the
 * annotations that hold them (see {@link SECRET_VALUE_ANNOTATIONS}), read
 * `***`; other objects are returned as they are.
 */
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

/**
 * Annotations of a Secret that hold its values: kubectl's client-side apply
 * record is the whole object as last applied, `data` and `stringData`
 * included. Masked whatever they contain.
 */
export const SECRET_VALUE_ANNOTATIONS: readonly string[] = ["kubectl.kubernetes.io/last-applied-configuration"];
/** Values shorter than this are not searched for in other annotations (too many false matches). */
const MIN_SEARCHED_VALUE = 4;

/** Whether a masked object hid anything (to say so next to it). */
export function hasMaskedValues(obj: KubeObject): boolean {
  if (!isSecret(obj)) return false;
  return MASKED_FIELDS.some((field) => isStringMap(obj[field]) && Object.keys(obj[field] as object).length > 0) || maskedAnnotations(obj).length > 0;
}

function replaceValues(obj: KubeObject, replace: (value: string) => string): KubeObject {
  if (!isSecret(obj)) return obj;
  const copy: KubeObject = { ...obj };
  for (const field of MASKED_FIELDS) {
    const values = obj[field];
    if (!isStringMap(values)) continue;
    copy[field] = Object.fromEntries(Object.entries(values).map(([key, value]) => [key, replace(String(value))]));
  }
  const masked = maskedAnnotations(obj);
  if (masked.length > 0) {
    const annotations = { ...(obj.metadata.annotations as Record<string, unknown>) };
    for (const key of masked) annotations[key] = replace(String(annotations[key]));
    copy.metadata = { ...obj.metadata, annotations: annotations as Record<string, string> };
  }
  return copy;
}

/**
 * The annotations of a Secret that carry its values: kubectl's
 * last-applied-configuration always, and any other annotation whose text
 * contains one of the values (as stored in `data`, decoded, or from
 * `stringData`), e.g. another tool's copy of the object.
 */
function maskedAnnotations(obj: KubeObject): string[] {
  const annotations: unknown = obj.metadata?.annotations;
  if (!isStringMap(annotations)) return [];
  const values = secretValues(obj);
  return Object.keys(annotations).filter((key) => {
    if (SECRET_VALUE_ANNOTATIONS.includes(key)) return true;
    const text = annotations[key];
    return typeof text === "string" && values.some((value) => text.includes(value));
  });
}

function secretValues(obj: KubeObject): string[] {
  const values = new Set<string>();
  for (const field of MASKED_FIELDS) {
    const map = obj[field];
    if (!isStringMap(map)) continue;
    for (const raw of Object.values(map)) {
      if (typeof raw !== "string") continue;
      values.add(raw);
      if (field === "data") values.add(Buffer.from(raw, "base64").toString("utf8"));
    }
  }
  return [...values].filter((value) => value.length >= MIN_SEARCHED_VALUE);
}

function isStringMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Lenient readers for fields of an unstructured Kubernetes object. A missing
 * field, or one of the wrong type, yields the caller's default: readiness
 * rules must cope with objects the controllers have not filled in yet.
 */

export type Unstructured = Record<string, unknown>;

/** The shape of a `status.conditions[]` entry as readiness rules read it. */
export interface BasicCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

export function nestedField(obj: Unstructured, path: readonly string[]): unknown {
  let current: unknown = obj;
  for (const key of path) {
    if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** An integer field, or undefined when absent or not an integer. */
export function intField(obj: Unstructured, path: readonly string[]): number | undefined {
  const value = nestedField(obj, path);
  return typeof value === "number" && Number.isInteger(value) ? value : undefined;
}

export function intOr(obj: Unstructured, path: readonly string[], fallback: number): number {
  return intField(obj, path) ?? fallback;
}

export function stringOr(obj: Unstructured, path: readonly string[], fallback: string): string {
  const value = nestedField(obj, path);
  return typeof value === "string" ? value : fallback;
}

/**
 * `status.conditions`, normalised. Throws when the field exists but is not a
 * list of objects, because then no rule can be trusted to read it.
 */
export function conditionsOf(obj: Unstructured): BasicCondition[] {
  const raw = nestedField(obj, ["status", "conditions"]);
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new TypeError("status.conditions is not a list");
  return raw.map((entry, index) => {
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw new TypeError(`status.conditions[${index}] is not an object`);
    }
    const c = entry as Record<string, unknown>;
    return {
      type: typeof c.type === "string" ? c.type : "",
      status: typeof c.status === "string" ? c.status : "",
      reason: typeof c.reason === "string" ? c.reason : "",
      message: typeof c.message === "string" ? c.message : "",
    };
  });
}

export function findCondition(
  conditions: readonly BasicCondition[],
  type: string,
  status?: string,
): BasicCondition | undefined {
  return conditions.find((c) => c.type === type && (status === undefined || c.status === status));
}

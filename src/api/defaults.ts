/**
 * The schema defaults, applied in code. The API server applies them to every
 * StageSet it stores; a StageSet the CLI reads from a file never passed the
 * API server, so it goes through `withDefaults` instead. Both read the same
 * `default` entries of schema.ts.
 *
 * Defaults that depend on the controller (`interval` from --default-interval,
 * `retryInterval` from `interval`) are not schema defaults and are not applied.
 */
import type { SchemaNode } from "./schema-builders.js";
import { stageSetSpecSchema } from "./schema.js";
import type { StageSetSpec } from "./types.js";

/** Returns a copy of `spec` with every absent field that has a schema default set to it. */
export function withDefaults(spec: StageSetSpec): StageSetSpec {
  return applyDefaults(structuredClone(spec), stageSetSpecSchema) as StageSetSpec;
}

/**
 * Fills defaults into `value` in place, like the API server: a property's
 * default applies only where its parent object exists and the property is
 * absent.
 */
export function applyDefaults(value: unknown, schema: SchemaNode): unknown {
  if (Array.isArray(value)) {
    if (schema.items) for (const item of value) applyDefaults(item, schema.items);
    return value;
  }
  if (!isPlainObject(value)) return value;
  if (schema.properties) {
    for (const [name, propertySchema] of Object.entries(schema.properties)) {
      if (value[name] === undefined && propertySchema.default !== undefined) {
        value[name] = structuredClone(propertySchema.default);
      }
      if (value[name] !== undefined) applyDefaults(value[name], propertySchema);
    }
  } else if (schema.additionalProperties) {
    for (const entry of Object.values(value)) applyDefaults(entry, schema.additionalProperties);
  }
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

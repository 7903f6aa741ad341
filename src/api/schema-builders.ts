/**
 * A small vocabulary for writing OpenAPI v3 structural schemas (the subset
 * `apiextensions.k8s.io/v1` accepts) in TypeScript. Every builder puts the keys
 * in the same order, so the generated CRD YAML is stable.
 */

export type CelReason = "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";

/** One `x-kubernetes-validations` entry. */
export interface CelValidation {
  rule: string;
  message: string;
  messageExpression?: string;
  /** Relative JSONPath of the field the error is reported on (no list indexes). */
  fieldPath?: string;
  reason?: CelReason;
}

export interface SchemaNode {
  description?: string;
  type?: "object" | "array" | "string" | "integer" | "boolean";
  format?: string;
  default?: unknown;
  enum?: readonly (string | number)[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  additionalProperties?: SchemaNode;
  items?: SchemaNode;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-map-type"?: "atomic" | "granular";
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-validations"?: CelValidation[];
}

/** Options shared by every builder; `validations` become `x-kubernetes-validations`. */
export type NodeOptions = Omit<SchemaNode, "description" | "type" | "properties" | "required" | "items" | "x-kubernetes-validations"> & {
  validations?: CelValidation[];
};

const REQUIRED = Symbol("required");

/** A property that must be present; see {@link required}. */
export interface RequiredProperty {
  readonly [REQUIRED]: true;
  readonly schema: SchemaNode;
}

export type Property = SchemaNode | RequiredProperty;

/** Marks an object property as required. */
export function required(schema: SchemaNode): RequiredProperty {
  return { [REQUIRED]: true, schema };
}

function isRequired(property: Property): property is RequiredProperty {
  return (property as RequiredProperty)[REQUIRED] === true;
}

function node(description: string, type: SchemaNode["type"], options: NodeOptions = {}): SchemaNode {
  const { validations, ...rest } = options;
  const result: SchemaNode = { description, type, ...rest };
  if (validations && validations.length > 0) result["x-kubernetes-validations"] = validations;
  return result;
}

export function string(description: string, options?: NodeOptions): SchemaNode {
  return node(description, "string", options);
}

export function integer(description: string, options?: NodeOptions): SchemaNode {
  return node(description, "integer", options);
}

export function boolean(description: string, options?: NodeOptions): SchemaNode {
  return node(description, "boolean", options);
}

export function object(description: string, properties: Record<string, Property>, options: NodeOptions = {}): SchemaNode {
  const { validations, ...rest } = options;
  const result: SchemaNode = { description, type: "object", ...rest, properties: {} };
  const requiredNames: string[] = [];
  for (const [name, property] of Object.entries(properties)) {
    result.properties![name] = isRequired(property) ? property.schema : property;
    if (isRequired(property)) requiredNames.push(name);
  }
  if (requiredNames.length > 0) result.required = requiredNames;
  if (validations && validations.length > 0) result["x-kubernetes-validations"] = validations;
  return result;
}

/** A list; `x-kubernetes-list-type` defaults to `atomic` (the list is replaced as a whole by server-side apply). */
export function array(description: string, items: SchemaNode, options: NodeOptions = {}): SchemaNode {
  const { validations, ...rest } = options;
  const result: SchemaNode = { description, type: "array", ...rest, items };
  result["x-kubernetes-list-type"] ??= "atomic";
  if (validations && validations.length > 0) result["x-kubernetes-validations"] = validations;
  return result;
}

/** A map from string keys to values of one schema. */
export function map(description: string, values: SchemaNode, options: NodeOptions = {}): SchemaNode {
  const { validations, ...rest } = options;
  const result: SchemaNode = { description, type: "object", ...rest, additionalProperties: values };
  if (validations && validations.length > 0) result["x-kubernetes-validations"] = validations;
  return result;
}

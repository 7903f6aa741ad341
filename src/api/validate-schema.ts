/**
 * Structural validation of a value against a schema of schema.ts: the checks
 * the API server makes before it evaluates any CEL rule (types, required and
 * unknown fields, enums, patterns, lengths, bounds, set and map lists).
 */
import { InvalidDurationError, parseDuration } from "./duration.js";
import { DNS1123_LABEL_PATTERN, DURATION_PATTERN } from "./schema.js";
import type { SchemaNode } from "./schema-builders.js";

export interface ValidationIssue {
  /** Path of the offending field, e.g. `spec.stages[1].name`. */
  field: string;
  /** What is wrong and how to fix it. */
  message: string;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function childPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  const segment = IDENTIFIER.test(key) ? key : `[${JSON.stringify(key)}]`;
  if (parent === "") return segment;
  return segment.startsWith("[") ? `${parent}${segment}` : `${parent}.${segment}`;
}

export function validateAgainstSchema(value: unknown, schema: SchemaNode, path: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  check(value, schema, path, issues);
  return issues;
}

function check(value: unknown, schema: SchemaNode, path: string, issues: ValidationIssue[]): void {
  const report = (message: string, field = path): void => {
    issues.push({ field, message });
  };
  switch (schema.type) {
    case "object":
      if (!isPlainObject(value)) return report(`must be an object, not ${describeType(value)}`);
      return checkObject(value, schema, path, issues);
    case "array":
      if (!Array.isArray(value)) return report(`must be a list, not ${describeType(value)}`);
      return checkArray(value, schema, path, issues);
    case "string":
      if (typeof value !== "string") return report(`must be a string, not ${describeType(value)}`);
      return checkString(value, schema, path, report);
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value)) {
        return report(`must be a whole number, not ${describeType(value)}`);
      }
      if (schema.minimum !== undefined && value < schema.minimum) report(`must be at least ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) report(`must be at most ${schema.maximum}`);
      return checkEnum(value, schema, report);
    case "boolean":
      if (typeof value !== "boolean") return report(`must be true or false, not ${describeType(value)}`);
      return;
    default:
      return;
  }
}

function checkObject(value: Record<string, unknown>, schema: SchemaNode, path: string, issues: ValidationIssue[]): void {
  // Own properties only, here and below: a field named like an Object
  // member (`toString`, `constructor`, `__proto__`) is a field like any other.
  for (const name of schema.required ?? []) {
    if (!Object.hasOwn(value, name) || value[name] === undefined || value[name] === null) {
      issues.push({ field: childPath(path, name), message: "is required: set it" });
    }
  }
  if (schema.properties) {
    const known = Object.keys(schema.properties);
    for (const [name, child] of Object.entries(value)) {
      const childSchema = Object.hasOwn(schema.properties, name) ? schema.properties[name] : undefined;
      if (childSchema === undefined) {
        if (schema["x-kubernetes-preserve-unknown-fields"] !== true) {
          issues.push({
            field: childPath(path, name),
            message: `is not a known field: remove it or fix its spelling (known fields: ${known.join(", ")})`,
          });
        }
      } else if (child !== undefined && child !== null) {
        check(child, childSchema, childPath(path, name), issues);
      }
    }
  } else if (schema.additionalProperties) {
    for (const [key, child] of Object.entries(value)) check(child, schema.additionalProperties, childPath(path, key), issues);
  }
}

function checkArray(value: unknown[], schema: SchemaNode, path: string, issues: ValidationIssue[]): void {
  if (schema.minItems !== undefined && value.length < schema.minItems) {
    issues.push({ field: path, message: `must have at least ${schema.minItems} item${schema.minItems === 1 ? "" : "s"}` });
  }
  if (schema.maxItems !== undefined && value.length > schema.maxItems) {
    issues.push({ field: path, message: `must have at most ${schema.maxItems} items: split the StageSet or remove items` });
  }
  if (schema.items) value.forEach((item, index) => check(item, schema.items!, childPath(path, index), issues));
  if (schema["x-kubernetes-list-type"] === "set") {
    value.forEach((item, index) => {
      if (value.indexOf(item) !== index) {
        issues.push({ field: childPath(path, index), message: `duplicates ${JSON.stringify(item)}: remove it` });
      }
    });
  }
}

function checkString(value: string, schema: SchemaNode, path: string, report: (message: string) => void): void {
  if (schema.minLength !== undefined && value.length < schema.minLength) {
    report(schema.minLength === 1 ? "must not be empty" : `must be at least ${schema.minLength} characters long`);
  }
  if (schema.maxLength !== undefined && value.length > schema.maxLength) {
    report(`must be at most ${schema.maxLength} characters long`);
  }
  if (schema.pattern !== undefined && value !== "") checkPattern(value, schema.pattern, path, report);
  if (schema.format === "date-time" && (!RFC3339.test(value) || Number.isNaN(Date.parse(value)))) {
    report(`${JSON.stringify(value)} is not an RFC 3339 time: write e.g. 2026-12-24T00:00:00Z`);
  }
  checkEnum(value, schema, report);
}

function checkPattern(value: string, pattern: string, path: string, report: (message: string) => void): void {
  if (pattern === DURATION_PATTERN) {
    try {
      parseDuration(value, path);
    } catch (err) {
      if (!(err instanceof InvalidDurationError)) throw err;
      report(err.problem);
    }
    return;
  }
  if (new RegExp(pattern).test(value)) return;
  if (pattern === DNS1123_LABEL_PATTERN) {
    report(
      `${JSON.stringify(value)} is not a DNS-1123 label: use lowercase letters, digits and '-', starting and ending with a letter or digit`,
    );
  } else {
    report(`${JSON.stringify(value)} does not match ${pattern}`);
  }
}

function checkEnum(value: string | number, schema: SchemaNode, report: (message: string) => void): void {
  if (schema.enum !== undefined && !schema.enum.includes(value)) {
    report(`${JSON.stringify(value)} is not allowed: use one of ${schema.enum.join(", ")}`);
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${JSON.stringify(value)}`;
}

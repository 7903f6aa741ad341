import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { validateStageSet } from "../../../src/api/validate.js";
import { validateAgainstSchema } from "../../../src/api/validate-schema.js";
import type { SchemaNode } from "../../../src/api/schema-builders.js";

const minimal = () => ({
  apiVersion: "stages.metio.wtf/v1",
  kind: "StageSet",
  metadata: { name: "my-app" },
  spec: { stages: [{ name: "app", sourceRef: { name: "my-app" } }] as Record<string, unknown>[] },
});

describe("unknown fields named like JavaScript object members", () => {
  for (const field of ["toString", "constructor", "hasOwnProperty", "valueOf", "__proto__", "__defineGetter__", "isPrototypeOf"]) {
    test(`${field} in a stage is an unknown field`, () => {
      // Parsed from YAML, as `stagesetctl -f` and the API server's JSON give it: `__proto__` is an own key.
      const stageSet = parse(`apiVersion: stages.metio.wtf/v1\nkind: StageSet\nmetadata: {name: my-app}\nspec:\n  stages:\n  - name: app\n    sourceRef: {name: my-app}\n    ${field}: {x: 1}\n`) as unknown;
      const issues = validateStageSet(stageSet);
      const issue = issues.find((i) => i.field.endsWith(field) || i.field.includes(JSON.stringify(field)));
      assert.ok(issue, `no issue for ${field}: ${JSON.stringify(issues)}`);
      assert.match(issue.message, /is not a known field/);
    });
  }

  test("in a JSON-parsed object too, at the top of the spec", () => {
    const stageSet = JSON.parse(JSON.stringify({ ...minimal(), spec: { ...minimal().spec } }).replace('"stages"', '"toString":"x","stages"')) as unknown;
    const issues = validateStageSet(stageSet);
    assert.ok(issues.some((i) => i.field === "spec.toString" && /is not a known field/.test(i.message)), JSON.stringify(issues));
  });

  test("a required field is not found on the prototype", () => {
    const schema: SchemaNode = { type: "object", required: ["toString"], properties: { toString: { type: "string" as const } } };
    assert.deepEqual(validateAgainstSchema({}, schema, ""), [{ field: "toString", message: "is required: set it" }]);
  });
});

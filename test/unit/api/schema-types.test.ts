// types.ts and schema.ts describe the same shapes: every interface of the API
// has the same fields as its schema node, and a field is required in one
// exactly when it is required in the other.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import ts from "typescript";
import type { SchemaNode } from "../../../src/api/schema-builders.js";
import { stageInventorySpecSchema, stageSetSpecSchema, stageSetStatusSchema } from "../../../src/api/schema.js";
import { repoRoot } from "../../../src/util/tools.js";

interface Shape {
  fields: Map<string, { optional: boolean; literal?: ts.TypeLiteralNode }>;
}

function shapesOf(file: string): Map<string, Shape> {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
  const shapes = new Map<string, Shape>();
  source.forEachChild((node) => {
    if (ts.isInterfaceDeclaration(node)) shapes.set(node.name.text, shapeOf(node.members));
  });
  return shapes;
}

function shapeOf(members: ts.NodeArray<ts.TypeElement>): Shape {
  const fields: Shape["fields"] = new Map();
  for (const member of members) {
    if (!ts.isPropertySignature(member) || !ts.isIdentifier(member.name)) continue;
    const literal = member.type && ts.isTypeLiteralNode(member.type) ? member.type : undefined;
    fields.set(member.name.text, { optional: member.questionToken !== undefined, ...(literal ? { literal } : {}) });
  }
  return { fields };
}

/** Walks `path` (property names; `[]` steps into list items) from `root`. */
function at(root: SchemaNode, path: string): SchemaNode {
  let node = root;
  for (const step of path.split(".").filter(Boolean)) {
    const next = step === "[]" ? node.items : node.properties?.[step];
    assert.ok(next, `schema has no ${path} (stopped at ${step})`);
    node = next;
  }
  return node;
}

function differences(name: string, shape: Shape, schema: SchemaNode): string[] {
  const problems: string[] = [];
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  for (const [field, { optional, literal }] of shape.fields) {
    const property = properties[field];
    if (property === undefined) {
      problems.push(`${name}.${field} is in types.ts but not in the schema`);
      continue;
    }
    if (optional === required.has(field)) {
      problems.push(`${name}.${field} is ${optional ? "optional" : "required"} in types.ts but not in the schema`);
    }
    if (literal) problems.push(...differences(`${name}.${field}`, shapeOf(literal.members), property));
  }
  for (const field of Object.keys(properties)) {
    if (!shape.fields.has(field)) problems.push(`${name}.${field} is in the schema but not in types.ts`);
  }
  return problems;
}

const spec = (path: string) => at(stageSetSpecSchema, path);
const action = "stages.[].actions.pre.[]";

const correspondence: [string, SchemaNode][] = [
  ["StageSetSpec", stageSetSpecSchema],
  ["NamespacedName", spec("dependsOn.[]")],
  ["SecretKeyRef", spec("kubeConfig.secretRef")],
  ["VersionSpec", spec("version")],
  ["VersionFromObject", spec("version.fromObject")],
  ["VersionFromArtifact", spec("version.fromArtifact")],
  ["Migration", spec("migrations.[]")],
  ["UpdateWindow", spec("updateWindows.[]")],
  ["Stage", spec("stages.[]")],
  ["SourceRef", spec("stages.[].sourceRef")],
  ["Patch", spec("stages.[].patches.[]")],
  ["PatchTarget", spec("stages.[].patches.[].target")],
  ["PostBuild", spec("stages.[].postBuild")],
  ["SubstituteReference", spec("stages.[].postBuild.substituteFrom.[]")],
  ["ConflictPolicy", spec("stages.[].conflictPolicy")],
  ["ConflictRule", spec("stages.[].conflictPolicy.rules.[]")],
  ["ConflictTarget", spec("stages.[].conflictPolicy.rules.[].target")],
  ["ReadyChecks", spec("stages.[].readyChecks")],
  ["ObjectCheck", spec("stages.[].readyChecks.checks.[]")],
  ["HealthExpr", spec("stages.[].readyChecks.exprs.[]")],
  ["StageActions", spec("stages.[].actions")],
  ["Action", spec(action)],
  ["JobAction", spec(`${action}.job`)],
  ["HttpAction", spec(`${action}.http`)],
  ["WaitAction", spec(`${action}.wait`)],
  ["PatchAction", spec(`${action}.patch`)],
  ["DeleteAction", spec(`${action}.delete`)],
  ["ApplyAction", spec(`${action}.apply`)],
  ["ActionTarget", spec(`${action}.patch.target`)],
  ["StageSetStatus", stageSetStatusSchema],
  ["Condition", at(stageSetStatusSchema, "conditions.[]")],
  ["StageStatus", at(stageSetStatusSchema, "stages.[]")],
  ["SnapshotEntry", at(stageSetStatusSchema, "lastAppliedSnapshot.[]")],
  ["PendingUpdate", at(stageSetStatusSchema, "pendingUpdate")],
  ["StageInventorySpec", stageInventorySpecSchema],
  ["InventoryEntry", at(stageInventorySpecSchema, "entries.[]")],
];

describe("types.ts and schema.ts", () => {
  const shapes = shapesOf(join(repoRoot(), "src/api/types.ts"));
  for (const [name, schema] of correspondence) {
    test(`${name} has the fields of its schema`, () => {
      const shape = shapes.get(name);
      assert.ok(shape, `types.ts has no interface ${name}`);
      assert.deepEqual(differences(name, shape, schema), []);
    });
  }
});

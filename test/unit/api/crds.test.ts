import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { stageInventoryCrd, stageSetCrd } from "../../../src/api/crds.js";
import { generatedCrdFiles, GENERATE_COMMAND } from "../../../src/api/generate-crds.js";
import type { SchemaNode } from "../../../src/api/schema-builders.js";
import { stageSetSpecSchema } from "../../../src/api/schema.js";
import { repoRoot } from "../../../src/util/tools.js";

describe("generated CRDs", () => {
  for (const file of generatedCrdFiles()) {
    test(`${file.path} is up to date`, () => {
      let committed: string;
      try {
        committed = readFileSync(join(repoRoot(), file.path), "utf8");
      } catch {
        assert.fail(`${file.path} is missing: run \`${GENERATE_COMMAND}\` and commit the result`);
      }
      assert.ok(
        committed === file.content,
        `${file.path} is stale: src/api/schema.ts changed since it was generated; run \`${GENERATE_COMMAND}\` and commit the result`,
      );
    });
  }

  test("rendering is deterministic and the YAML parses back to the CRD objects", () => {
    const [first, second] = [generatedCrdFiles(), generatedCrdFiles()];
    assert.deepEqual(first, second);
    assert.deepEqual(
      first.map((file) => file.path),
      ["config/crd/stages.metio.wtf_stagesets.yaml", "config/crd/stages.metio.wtf_stageinventories.yaml"],
    );
    assert.deepEqual(parse(first[0]!.content), stageSetCrd());
    assert.deepEqual(parse(first[1]!.content), stageInventoryCrd());
    assert.match(first[0]!.content, /^# Generated .*\n# Regenerate with: npm run generate\n/);
  });
});

describe("StageSet CRD", () => {
  const crd = stageSetCrd();
  const version = crd.spec.versions[0]!;

  test("is namespaced under stages.metio.wtf/v1 with short name ss, outside the all category", () => {
    assert.equal(crd.metadata.name, "stagesets.stages.metio.wtf");
    assert.equal(crd.spec.scope, "Namespaced");
    assert.deepEqual(crd.spec.names.shortNames, ["ss"]);
    assert.equal((crd.spec.names as { categories?: string[] }).categories, undefined);
    assert.equal(version.name, "v1");
    assert.deepEqual(version.subresources, { status: {} });
  });

  test("prints Ready, Reason, Stages, Version and Age", () => {
    const columns = version.additionalPrinterColumns.filter((c) => c.priority === undefined);
    assert.deepEqual(
      columns.map((c) => [c.name, c.jsonPath]),
      [
        ["Ready", '.status.conditions[?(@.type=="Ready")].status'],
        ["Reason", '.status.conditions[?(@.type=="Ready")].reason'],
        ["Stages", '.status.stages[?(@.phase!="Ready")].name'],
        ["Version", ".status.version"],
        ["Age", ".metadata.creationTimestamp"],
      ],
    );
  });

  test("every list in the spec is bounded, so the API server can estimate the CEL cost", () => {
    const unbounded: string[] = [];
    const walk = (node: SchemaNode, path: string): void => {
      if (node.type === "array" && node.maxItems === undefined) unbounded.push(path);
      for (const [name, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${name}`);
      if (node.items) walk(node.items, `${path}[]`);
      if (node.additionalProperties) walk(node.additionalProperties, `${path}{}`);
    };
    walk(stageSetSpecSchema, "spec");
    assert.deepEqual(unbounded, []);
  });

  test("every CEL rule carries a message", () => {
    const rules: { rule: string; message: string }[] = [];
    const walk = (node: SchemaNode): void => {
      rules.push(...(node["x-kubernetes-validations"] ?? []));
      Object.values(node.properties ?? {}).forEach(walk);
      if (node.items) walk(node.items);
    };
    walk(stageSetSpecSchema);
    assert.ok(rules.length >= 10, `expected the static rules, found ${rules.length}`);
    for (const rule of rules) assert.ok(rule.message.includes(":"), `rule ${rule.rule} needs a message with the fix`);
  });
});

describe("StageInventory CRD", () => {
  test("stores stagePosition and entries in spec and has no status subresource", () => {
    const crd = stageInventoryCrd();
    const version = crd.spec.versions[0]!;
    assert.equal(crd.metadata.name, "stageinventories.stages.metio.wtf");
    assert.equal(version.subresources, undefined);
    const spec = version.schema.openAPIV3Schema.properties!.spec!;
    assert.deepEqual(spec.required, ["stagePosition", "entries"]);
    assert.deepEqual(spec.properties!.entries!.items!.required, ["id", "v"]);
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { BuildError } from "../../../src/errors.js";
import { addPatchesToKustomization, validatePatches } from "../../../src/build/patches.js";

describe("addPatchesToKustomization", () => {
  it("appends stage patches after the user's own and keeps every other field and comment", () => {
    const text = "# mine\nresources:\n  - a.yaml\npatches:\n  - path: own.yaml\n";
    const out = addPatchesToKustomization(text, [{ patch: "- op: remove\n  path: /x\n", target: { kind: "Deployment", name: "web", labelSelector: "" } }], "kustomization.yaml");
    assert.match(out, /# mine/);
    assert.deepEqual(parse(out), {
      resources: ["a.yaml"],
      patches: [{ path: "own.yaml" }, { patch: "- op: remove\n  path: /x\n", target: { kind: "Deployment", name: "web" } }],
    });
  });

  it("handles an empty kustomization file", () => {
    assert.deepEqual(parse(addPatchesToKustomization("", [{ patch: "kind: X" }], "k")), { patches: [{ patch: "kind: X" }] });
  });

  it("refuses a kustomization whose patches field is not a list", () => {
    assert.throws(() => addPatchesToKustomization("patches: nope\n", [{ patch: "a: b" }], "apps/kustomization.yaml"), /apps\/kustomization.yaml: field "patches" must be a list/);
  });
});

describe("validatePatches", () => {
  it("names the patch that is empty, not YAML, or not an object or list", () => {
    const check = (patch: string, expected: RegExp) =>
      assert.throws(() => validatePatches([{ patch: "a: b" }, { patch }], 3), (err: unknown) => err instanceof BuildError && err.message.startsWith("spec.stages[3].patches[1]") && expected.test(err.message));
    check("  ", /empty/);
    check("a: [", /not valid YAML/);
    check("just a string", /must be a YAML object/);
  });

  it("accepts strategic-merge and JSON6902 patches", () => {
    validatePatches([{ patch: "apiVersion: v1\nkind: X\nmetadata: {name: a}\n" }, { patch: "[{op: add, path: /a, value: 1}]" }], 0);
  });
});

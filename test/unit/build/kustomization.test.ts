import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { kustomizationFileIn, listGeneratedResources, renderGeneratedKustomization } from "../../../src/build/kustomization.js";
import { repoRoot } from "../../../src/util/tools.js";

const fixtures = join(repoRoot(), "test", "fixtures", "build");
const entries = (...names: string[]) => names.map((name) => ({ name, isDirectory: () => false }));

describe("kustomizationFileIn", () => {
  it("recognises kustomize's three names, preferring kustomization.yaml", () => {
    assert.equal(kustomizationFileIn(entries("a.yaml", "Kustomization")), "Kustomization");
    assert.equal(kustomizationFileIn(entries("kustomization.yml")), "kustomization.yml");
    assert.equal(kustomizationFileIn(entries("kustomization.yml", "kustomization.yaml")), "kustomization.yaml");
    assert.equal(kustomizationFileIn(entries("deploy.yaml")), undefined);
    assert.equal(kustomizationFileIn([{ name: "kustomization.yaml", isDirectory: () => true }]), undefined);
  });
});

describe("listGeneratedResources", () => {
  it("lists YAML files recursively in lexical order and packaged directories as one entry", async () => {
    assert.deepEqual(await listGeneratedResources(join(fixtures, "plain")), [
      "./a-configmap.yaml",
      "./nested/b-service.yml",
      "./nested/deeper/c-two-docs.yaml",
      "./packaged",
    ]);
  });

  it("renders a kustomization with those resources", () => {
    assert.deepEqual(parse(renderGeneratedKustomization(["./a.yaml"])), {
      apiVersion: "kustomize.config.k8s.io/v1beta1",
      kind: "Kustomization",
      resources: ["./a.yaml"],
    });
  });
});

import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BuildError } from "../../../src/errors.js";
import { assertKustomizationsConfined, escapesRoot, pathReferences } from "../../../src/build/confine.js";
import { repoRoot } from "../../../src/util/tools.js";

const fixtures = join(repoRoot(), "test", "fixtures", "build");

describe("escapesRoot", () => {
  it("accepts paths that stay in the artifact, sibling directories included", () => {
    assert.equal(escapesRoot("overlays/prod", "../../base"), undefined);
    assert.equal(escapesRoot("", "deploy.yaml"), undefined);
    assert.equal(escapesRoot("a", "https://github.com/org/repo//x?ref=v1"), undefined);
  });

  it("refuses absolute paths, file: URLs and climbing out", () => {
    assert.match(escapesRoot("a", "/etc/passwd") ?? "", /absolute/);
    assert.match(escapesRoot("a", "file:///etc") ?? "", /file: URL/);
    assert.match(escapesRoot("overlays/prod", "../../../x") ?? "", /outside/);
    assert.match(escapesRoot("", "..") ?? "", /outside/);
  });
});

describe("pathReferences", () => {
  it("finds the fields kustomize reads files from, not inline patches", () => {
    const refs = pathReferences({
      resources: ["a.yaml"],
      components: ["../c"],
      patches: [{ path: "p.yaml" }, { patch: "kind: X\nmetadata: {name: y}\n" }],
      patchesStrategicMerge: ["sm.yaml", "kind: X\nmetadata: {name: y}\n"],
      configMapGenerator: [{ name: "c", files: ["key=f.txt", "g.txt"], envs: ["e.env"] }],
      secretGenerator: [{ name: "s", env: "s.env" }],
      openapi: { path: "schema.json" },
      replacements: [{ path: "r.yaml" }],
    }).map((r) => r.value);
    assert.deepEqual(refs.sort(), ["../c", "a.yaml", "e.env", "f.txt", "g.txt", "p.yaml", "r.yaml", "s.env", "schema.json", "sm.yaml"].sort());
  });
});

describe("assertKustomizationsConfined", () => {
  it("passes an overlay that reads a sibling base", async () => {
    await assertKustomizationsConfined(join(fixtures, "overlay"), 0);
  });

  it("refuses a kustomization that reads a file outside the artifact, naming file and field", async () => {
    await assert.rejects(
      assertKustomizationsConfined(join(fixtures, "escape"), 4),
      (err: unknown) =>
        err instanceof BuildError && err.message.startsWith("spec.stages[4]: app/kustomization.yaml: configMapGenerator[0].files") && err.message.includes("outside the artifact"),
    );
  });
});

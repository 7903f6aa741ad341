import assert from "node:assert/strict";
import { lstat, readdir, readFile, readlink, realpath, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BuildError } from "../../../src/errors.js";
import { createWorkspace, normalizeStagePath, resolveStageDirectory } from "../../../src/build/workspace.js";
import { repoRoot } from "../../../src/util/tools.js";

const fixtures = join(repoRoot(), "test", "fixtures", "build");

describe("normalizeStagePath", () => {
  it("normalizes to a root-relative path", () => {
    assert.equal(normalizeStagePath(undefined, 0), "");
    assert.equal(normalizeStagePath("./", 0), "");
    assert.equal(normalizeStagePath("./apps/web/", 0), "apps/web");
    assert.equal(normalizeStagePath("/apps", 0), "apps");
    assert.equal(normalizeStagePath("apps/../infra", 0), "infra");
  });

  it("refuses a path that escapes the artifact, naming the field", () => {
    for (const path of ["..", "../x", "apps/../../x"]) {
      assert.throws(
        () => normalizeStagePath(path, 2),
        (err: unknown) => err instanceof BuildError && err.terminal && err.message.startsWith("spec.stages[2].path:"),
      );
    }
  });
});

describe("resolveStageDirectory", () => {
  it("fails naming the path when the directory is missing or a file", async () => {
    await assert.rejects(resolveStageDirectory(join(fixtures, "plain"), "nope", 1, "./nope"), /spec\.stages\[1\]\.path: directory "\.\/nope" does not exist/);
    await assert.rejects(resolveStageDirectory(join(fixtures, "plain"), "a-configmap.yaml", 1, "a-configmap.yaml"), /is a file, not a directory/);
  });
});

describe("createWorkspace", () => {
  it("mirrors the artifact with real directories down to the stage and links for the rest, without the stage's kustomization", async () => {
    const root = join(fixtures, "overlay");
    const before = await readFile(join(root, "overlays/prod/kustomization.yaml"), "utf8");
    const ws = await createWorkspace(root, "overlays/prod");
    try {
      assert.ok((await lstat(join(ws.root, "overlays"))).isDirectory());
      assert.ok((await lstat(join(ws.root, "base"))).isSymbolicLink());
      assert.equal(await readlink(join(ws.root, "base")), join(await realpath(root), "base"));
      assert.deepEqual(await readdir(ws.stageDir), []);
    } finally {
      await ws.dispose();
    }
    await assert.rejects(stat(ws.root), { code: "ENOENT" });
    assert.equal(await readFile(join(root, "overlays/prod/kustomization.yaml"), "utf8"), before);
  });
});

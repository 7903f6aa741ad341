import assert from "node:assert/strict";
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BuildError } from "../../../src/errors.js";
import { readConfinedFile } from "../../../src/build/confine.js";

// Confinement of the build itself is tested with the real kbuild in build-confinement.test.ts.
describe("readConfinedFile", () => {
  let root: string;
  let outside: string;
  before(async () => {
    outside = await realpath(await mkdtemp(join(tmpdir(), "stageset-confine-outside-")));
    await writeFile(join(outside, "secret"), "canary");
    root = await realpath(await mkdtemp(join(tmpdir(), "stageset-confine-")));
    await mkdir(join(root, "app"));
    await writeFile(join(root, "app", "kustomization.yaml"), "resources: []\n");
    await symlink("../app/kustomization.yaml", join(root, "app", "Kustomization"));
    await mkdir(join(root, "evil"));
    await symlink(join(outside, "secret"), join(root, "evil", "kustomization.yaml"));
    await symlink(join(outside, "nothing"), join(root, "evil", "kustomization.yml"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it("reads a kustomization inside the artifact, through a link that stays inside", async () => {
    assert.equal(await readConfinedFile(root, join(root, "app", "kustomization.yaml"), 0), "resources: []\n");
    assert.equal(await readConfinedFile(root, join(root, "app", "Kustomization"), 0), "resources: []\n");
  });

  it("refuses a kustomization that links out of the artifact, without reading it", async () => {
    await assert.rejects(readConfinedFile(root, join(root, "evil", "kustomization.yaml"), 2), (err: unknown) => {
      assert.ok(err instanceof BuildError);
      assert.match(err.message, /^spec\.stages\[2\]: evil\/kustomization\.yaml resolves outside the artifact/);
      assert.ok(!err.message.includes("canary"));
      return true;
    });
  });

  it("reports a dangling link", async () => {
    await assert.rejects(readConfinedFile(root, join(root, "evil", "kustomization.yml"), 0), /evil\/kustomization\.yml cannot be read/);
  });
});

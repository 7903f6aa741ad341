import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "tar";
import { ArtifactError } from "../../../src/errors.js";
import { unpackArtifact, type UnpackOptions } from "../../../src/source/unpack.js";
import { tar, tarGz, type RawEntry } from "./helpers/tarball.js";

let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "unpack-test-"));
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

let counter = 0;
async function fileOf(contents: Buffer): Promise<string> {
  const path = join(work, `artifact-${++counter}`);
  await writeFile(path, contents);
  return path;
}

/** A fresh parent directory, so a test can see that nothing is left behind. */
async function parent(): Promise<string> {
  const dir = join(work, `out-${++counter}`);
  await mkdir(dir);
  return dir;
}

async function assertRefused(entries: RawEntry[], pattern: RegExp, options: UnpackOptions = {}): Promise<void> {
  const parentDir = await parent();
  await assert.rejects(
    unpackArtifact(await fileOf(tarGz(entries)), { ...options, parentDir }),
    (err: unknown) => err instanceof ArtifactError && err.reason === "ArtifactFailed" && pattern.test(err.message),
  );
  assert.deepEqual(await readdir(parentDir), [], "a refused tarball leaves nothing behind");
}

describe("unpackArtifact: accepted tarballs", () => {
  it("unpacks a .tar.gz made by a real tar packer", async () => {
    const sourceDir = await mkdtemp(join(work, "src-"));
    await mkdir(join(sourceDir, "overlays", "prod"), { recursive: true });
    await writeFile(join(sourceDir, "kustomization.yaml"), "resources: [overlays/prod]\n");
    await writeFile(join(sourceDir, "overlays", "prod", "deploy.yaml"), "kind: Deployment\n");
    const tarball = join(work, "real.tar.gz");
    await create({ gzip: true, file: tarball, cwd: sourceDir, portable: true }, ["."]);

    const unpacked = await unpackArtifact(tarball, { parentDir: await parent() });
    assert.equal(await readFile(join(unpacked.dir, "overlays/prod/deploy.yaml"), "utf8"), "kind: Deployment\n");
    assert.equal(await readFile(join(unpacked.dir, "kustomization.yaml"), "utf8"), "resources: [overlays/prod]\n");
    assert.equal(unpacked.bytes, 17 + 27);
    await unpacked.remove();
    await assert.rejects(stat(unpacked.dir), { code: "ENOENT" });
  });

  it("unpacks a plain tar, recognised by its magic bytes", async () => {
    const unpacked = await unpackArtifact(await fileOf(tar([{ path: "./", type: "5" }, { path: "./a.yaml", content: "a: 1\n" }])), {
      parentDir: await parent(),
    });
    assert.equal(await readFile(join(unpacked.dir, "a.yaml"), "utf8"), "a: 1\n");
    assert.equal(unpacked.entries, 2);
    await unpacked.remove();
  });

  it("keeps links that stay inside the tree and drops special permission bits", async () => {
    const unpacked = await unpackArtifact(
      await fileOf(
        tarGz([
          { path: "base/", type: "5" },
          { path: "base/deploy.yaml", content: "kind: Deployment\n", mode: 0o6777 },
          { path: "overlay/", type: "5" },
          { path: "overlay/deploy.yaml", type: "2", linkpath: "../base/deploy.yaml" },
          { path: "copy.yaml", type: "1", linkpath: "base/deploy.yaml" },
        ]),
      ),
      { parentDir: await parent() },
    );
    assert.equal(await readlink(join(unpacked.dir, "overlay/deploy.yaml")), "../base/deploy.yaml");
    assert.equal(await readFile(join(unpacked.dir, "copy.yaml"), "utf8"), "kind: Deployment\n");
    assert.equal((await lstat(join(unpacked.dir, "base/deploy.yaml"))).mode & 0o7777, 0o755);
    await unpacked.remove();
  });
});

describe("unpackArtifact: refused tarballs", () => {
  it("refuses a path with ..", () => assertRefused([{ path: "ok.yaml", content: "x" }, { path: "../x", content: "evil" }], /entry "\.\.\/x" has a path containing "\.\."/));

  it("refuses .. hidden in the middle of a path", () => assertRefused([{ path: "a/../../x", content: "evil" }], /entry "a\/\.\.\/\.\.\/x"/));

  it("refuses an absolute path", () => assertRefused([{ path: "/etc/x", content: "evil" }], /entry "\/etc\/x" has an absolute path/));

  it("refuses a symlink out of the tree", () =>
    assertRefused([{ path: "passwd", type: "2", linkpath: "../../etc/passwd" }], /symlink "passwd" -> "\.\.\/\.\.\/etc\/passwd" points outside the artifact/));

  it("refuses an absolute symlink", () =>
    assertRefused([{ path: "passwd", type: "2", linkpath: "/etc/passwd" }], /symlink "passwd" points to the absolute path "\/etc\/passwd"/));

  it("refuses a symlink chain that escapes through an earlier symlink", () =>
    assertRefused([{ path: "here", type: "2", linkpath: "." }, { path: "up", type: "2", linkpath: "here/.." }], /symlink "up" -> "here\/\.\." points outside/));

  it("refuses writing through a symlink", () =>
    assertRefused([{ path: "sub/", type: "5" }, { path: "link", type: "2", linkpath: "sub" }, { path: "link/x", content: "x" }], /entry "link\/x" is written through the symlink "link"/));

  it("refuses a symlink that replaces an earlier entry", () =>
    assertRefused([{ path: "a/", type: "5" }, { path: "a/f", content: "x" }, { path: "a", type: "2", linkpath: "." }], /symlink "a" replaces an earlier entry/));

  it("refuses a hardlink out of the tree", () =>
    assertRefused([{ path: "shadow", type: "1", linkpath: "../../etc/shadow" }], /"shadow".*containing "\.\."/));

  it("refuses an absolute hardlink", () => assertRefused([{ path: "shadow", type: "1", linkpath: "/etc/shadow" }], /"shadow".*absolute link target/));

  it("refuses a hardlink to anything but an earlier regular file", () =>
    assertRefused([{ path: "h", type: "1", linkpath: "later.yaml" }, { path: "later.yaml", content: "x" }], /hardlink "h" -> "later\.yaml" does not point to a regular file earlier/));

  for (const [type, name] of [
    ["3", "CharacterDevice"],
    ["4", "BlockDevice"],
    ["6", "FIFO"],
  ]) {
    it(`refuses a ${name} entry`, () => assertRefused([{ path: "dev", type }], new RegExp(`entry "dev" is a ${name}; device and FIFO entries are not allowed`)));
  }

  it("refuses entry types node-tar would skip silently", () =>
    assertRefused([{ path: "sparse", type: "S", content: "x" }], /entry "sparse" has unsupported type SparseFile/));

  it("refuses more entries than allowed", async () => {
    const entries = Array.from({ length: 11 }, (_, i) => ({ path: `f${i}.yaml`, content: "x" }));
    await assertRefused(entries, /has more than 10 entries \(limit reached at "f10\.yaml"\)/, { maxEntries: 10 });
  });

  it("refuses more content than allowed, by the sizes in the headers", async () => {
    const entries = [
      { path: "a", content: Buffer.alloc(600) },
      { path: "b", content: Buffer.alloc(600) },
    ];
    await assertRefused(entries, /unpacks to more than 1000 bytes \(limit reached at "b"\)/, { maxBytes: 1000 });
  });

  it("refuses a gzip bomb that hides data after the end of the archive", async () => {
    const bomb = Buffer.concat([tar([{ path: "a", content: "x" }]), Buffer.alloc(4 * 1024 * 1024)]);
    const { gzipSync } = await import("node:zlib");
    const parentDir = await parent();
    await assert.rejects(
      unpackArtifact(await fileOf(gzipSync(bomb)), { maxBytes: 1024, maxEntries: 10, parentDir }),
      (err: unknown) => err instanceof ArtifactError && /more than 10240 bytes after its end-of-archive marker/.test(err.message),
    );
    assert.deepEqual(await readdir(parentDir), []);
  });

  it("refuses a file that is not a tarball", async () => {
    await assert.rejects(unpackArtifact(await fileOf(Buffer.from("<html>oops</html>"))), /neither a gzip-compressed tarball nor a tar archive/);
    await assert.rejects(unpackArtifact(await fileOf(Buffer.alloc(0))), /the artifact file is empty/);
  });

  it("reports a corrupt or truncated tarball", async () => {
    await assert.rejects(
      unpackArtifact(await fileOf(Buffer.from([0x1f, 0x8b, 0x08, 0, 1, 2, 3])), { parentDir: await parent() }),
      (err: unknown) => err instanceof ArtifactError && /could not be unpacked/.test(err.message),
    );
    await assert.rejects(
      unpackArtifact(await fileOf(tarGz([{ path: "a", content: "x", declaredSize: 4096 }])), { parentDir: await parent() }),
      (err: unknown) => err instanceof ArtifactError && /Truncated input/.test(err.message),
    );
  });
});

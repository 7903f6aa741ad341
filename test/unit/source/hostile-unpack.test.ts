/**
 * Hostile tarballs (../shared/cases/hostile-inputs: symlink-reverse-chain,
 * tar-trailing-data-dos) on the unpacker and on the controller's path
 * (HTTP → digest → ArtifactCache → unpack). Table-driven: a new case is a row.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { constants, gzipSync } from "node:zlib";
import { ArtifactError } from "../../../src/errors.js";
import { ArtifactCache } from "../../../src/source/artifact-cache.js";
import { computeDigest } from "../../../src/source/digest.js";
import { MAX_TRAILING_BYTES, unpackArtifact } from "../../../src/source/unpack.js";
import { ArtifactServer } from "./helpers/artifact-server.js";
import { paxTar, tar, type RawEntry } from "./helpers/tarball.js";

let work: string;
const server = new ArtifactServer();
before(async () => {
  work = await mkdtemp(join(tmpdir(), "hostile-unpack-"));
  await server.start();
});
after(async () => {
  await server.stop();
  await rm(work, { recursive: true, force: true });
});

let counter = 0;
async function fileOf(contents: Buffer): Promise<string> {
  const path = join(work, `artifact-${++counter}`);
  await writeFile(path, contents);
  return path;
}
async function parent(): Promise<string> {
  const dir = join(work, `out-${++counter}`);
  await mkdir(dir);
  return dir;
}

const KUSTOMIZATION = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nconfigMapGenerator:\n- name: leak\n  files:\n  - stolen=r/etc/passwd\n";

/** The case's make-tarball.py: `r -> s0/…/s23/../…(24)` first, then `s0..s23 -> .`. */
function reverseChain(levels: number): RawEntry[] {
  const segments = Array.from({ length: levels }, (_, i) => `s${i}`);
  return [
    { path: "kustomization.yaml", content: KUSTOMIZATION },
    { path: "r", type: "2", linkpath: segments.join("/") + "/..".repeat(levels) },
    ...segments.map((s) => ({ path: s, type: "2", linkpath: "." })),
  ];
}

/** One 10-byte file, the end-of-archive marker, then `trailing` zero bytes, gzip-compressed in one stream. */
function trailingZeros(trailing: number): Buffer {
  return gzipSync(Buffer.concat([tar([{ path: "cm.yaml", content: "0123456789" }]), Buffer.alloc(trailing)]), { level: constants.Z_BEST_COMPRESSION });
}

interface RefusedCase {
  name: string;
  body: () => Buffer;
  message: RegExp;
  /** Wall-clock bound for the refusal. */
  withinMs?: number;
}

const refused: RefusedCase[] = [
  {
    name: "symlink chain judged in archive order (p -> q/.., then q -> .)",
    body: () => gzipSync(tar([{ path: "p", type: "2", linkpath: "q/.." }, { path: "q", type: "2", linkpath: "." }])),
    message: /symlink "p" -> "q\/\.\." points outside the artifact/,
  },
  {
    name: "symlink-reverse-chain case: 24 levels up to /",
    body: () => gzipSync(paxTar(reverseChain(24))),
    message: /symlink "r" -> "s0\/s1\/.*" points outside the artifact/,
  },
  {
    name: "symlink loop",
    body: () => gzipSync(tar([{ path: "a", type: "2", linkpath: "b" }, { path: "b", type: "2", linkpath: "a" }])),
    message: /symlink "a" -> "b" is part of a symlink loop/,
  },
  {
    name: "symlink chain through a later directory link",
    body: () => gzipSync(tar([{ path: "d/", type: "5" }, { path: "x", type: "2", linkpath: "l/../../.." }, { path: "l", type: "2", linkpath: "d" }])),
    message: /symlink "x" -> "l\/\.\.\/\.\.\/\.\." points outside/,
  },
  {
    name: "tar-trailing-data-dos case: 8 MiB of zeros after the end-of-archive marker",
    body: () => trailingZeros(8 << 20),
    message: /more than 10240 bytes after its end-of-archive marker/,
    withinMs: 1000,
  },
  {
    name: "tar-trailing-data-dos case: 64 MiB of zeros after the end-of-archive marker",
    body: () => trailingZeros(64 << 20),
    message: /more than 10240 bytes after its end-of-archive marker/,
    withinMs: 1000,
  },
  {
    name: "an empty archive followed by megabytes of zeros",
    body: () => gzipSync(Buffer.alloc(4 << 20)),
    message: /after its end-of-archive marker/,
    withinMs: 1000,
  },
  {
    name: "a gzip body that is not a tar",
    body: () => gzipSync(Buffer.from("<html><body>502 Bad Gateway</body></html>\n".repeat(20))),
    message: /is gzip-compressed but what it contains is not a tar archive/,
  },
  {
    name: "a tarball gzip-compressed twice",
    body: () => gzipSync(gzipSync(tar([{ path: "a.yaml", content: "a: 1\n" }]))),
    message: /is gzip-compressed but what it contains is not a tar archive/,
  },
];

describe("hostile tarballs: unpackArtifact", () => {
  for (const c of refused) {
    it(`refuses ${c.name}`, async () => {
      const tarball = await fileOf(c.body());
      const parentDir = await parent();
      const started = performance.now();
      await assert.rejects(
        unpackArtifact(tarball, { parentDir }),
        (err: unknown) => err instanceof ArtifactError && err.reason === "ArtifactFailed" && err.terminal && c.message.test(err.message),
      );
      const took = performance.now() - started;
      if (c.withinMs !== undefined) assert.ok(took < c.withinMs, `took ${Math.round(took)} ms`);
      assert.deepEqual(await readdir(parentDir), [], "a refused tarball leaves nothing behind");
    });
  }

  it("accepts the padding tar writers add after the marker (one 10 KiB record)", async () => {
    const unpacked = await unpackArtifact(await fileOf(trailingZeros(MAX_TRAILING_BYTES - 1024)), { parentDir: await parent() });
    assert.deepEqual(await readdir(unpacked.dir), ["cm.yaml"]);
    await unpacked.remove();
  });

  it("accepts links whose chains stay inside, whatever the order", async () => {
    const unpacked = await unpackArtifact(
      await fileOf(gzipSync(tar([{ path: "a/b/", type: "5" }, { path: "x", type: "2", linkpath: "l/../b" }, { path: "l", type: "2", linkpath: "a/b" }, { path: "a/b/f", content: "f" }]))),
      { parentDir: await parent() },
    );
    assert.deepEqual((await readdir(unpacked.dir)).sort(), ["a", "l", "x"]);
    await unpacked.remove();
  });

  for (const [name, body] of [
    ["an end-of-archive marker only", () => gzipSync(Buffer.alloc(1024))],
    ["a gzip stream of nothing", () => gzipSync(Buffer.alloc(0))],
    ["a plain tar of only the marker", () => Buffer.alloc(1024)],
    ["a tar made by node-tar of an empty directory", () => gzipSync(Buffer.alloc(10240))],
  ] as const) {
    it(`unpacks ${name} as an empty artifact`, async () => {
      const unpacked = await unpackArtifact(await fileOf(body()), { parentDir: await parent() });
      assert.equal(unpacked.entries, 0);
      assert.equal(unpacked.bytes, 0);
      assert.deepEqual(await readdir(unpacked.dir), []);
      await unpacked.remove();
    });
  }
});

describe("hostile tarballs: the controller's path (HTTP → digest → ArtifactCache → unpack)", () => {
  for (const c of refused) {
    it(`refuses ${c.name}, naming the artifact`, async () => {
      const body = c.body();
      const path = `/hostile-${++counter}.tar.gz`;
      const artifact = { url: server.serve(path, body), revision: `main@sha1:${"0".repeat(40)}`, digest: computeDigest("sha256", body) };
      const cacheDir = await parent();
      const cache = new ArtifactCache({ parentDir: cacheDir, fetch: { retries: 0, timeoutMs: 5000 } });
      try {
        await assert.rejects(
          cache.acquire(artifact),
          (err: unknown) =>
            err instanceof ArtifactError &&
            err.reason === "ArtifactFailed" &&
            err.message.startsWith(`artifact ${artifact.url} (revision ${artifact.revision}) refused:`) &&
            c.message.test(err.message),
        );
        assert.equal(cache.count, 0);
      } finally {
        await cache.close();
      }
      assert.deepEqual(await readdir(cacheDir), []);
    });
  }
});

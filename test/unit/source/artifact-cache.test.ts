import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ArtifactError } from "../../../src/errors.js";
import { ArtifactCache } from "../../../src/source/artifact-cache.js";
import type { Artifact } from "../../../src/source/artifact.js";
import { computeDigest } from "../../../src/source/digest.js";
import { waitFor } from "../../support/wait.js";
import { ArtifactServer } from "./helpers/artifact-server.js";
import { tarGz } from "./helpers/tarball.js";

const server = new ArtifactServer();
let work: string;

before(async () => {
  await server.start();
  work = await mkdtemp(join(tmpdir(), "cache-test-"));
});

after(async () => {
  await server.stop();
  await rm(work, { recursive: true, force: true });
});

/** Serves a one-file artifact of `size` bytes at `path`. */
function publish(path: string, size: number, fill = "a"): Artifact {
  const body = tarGz([{ path: "manifest.yaml", content: fill.repeat(size) }]);
  return { url: server.serve(path, body), revision: path, digest: computeDigest("sha256", body) };
}

const exists = (path: string) => stat(path).then(
  () => true,
  () => false,
);

function newCache(maxBytes: number): ArtifactCache {
  return new ArtifactCache({ parentDir: work, maxBytes, fetch: { retries: 0, timeoutMs: 2000 } });
}

describe("ArtifactCache", () => {
  it("downloads an artifact once for concurrent callers and reuses it afterwards", async () => {
    const cache = newCache(1 << 20);
    const artifact = publish("/shared.tar.gz", 100);
    const [a, b] = await Promise.all([cache.acquire(artifact), cache.acquire(artifact)]);
    assert.equal(a.dir, b.dir);
    assert.equal(await readFile(join(a.dir, "manifest.yaml"), "utf8"), "a".repeat(100));
    const c = await cache.acquire({ ...artifact, url: server.url("/not-fetched-again.tar.gz") });
    assert.equal(c.dir, a.dir, "same digest, same tree, no download");
    assert.equal(server.hitsOf("/shared.tar.gz"), 1);
    assert.equal(server.hitsOf("/not-fetched-again.tar.gz"), 0);
    for (const lease of [a, b, c]) lease.release();
    await cache.close();
  });

  it("evicts the least recently used idle tree past its size bound, never a leased one", async () => {
    const cache = newCache(250);
    const first = publish("/first.tar.gz", 100, "1");
    const second = publish("/second.tar.gz", 100, "2");
    const third = publish("/third.tar.gz", 100, "3");

    const leaseFirst = await cache.acquire(first);
    const leaseSecond = await cache.acquire(second);
    leaseSecond.release();
    const leaseThird = await cache.acquire(third);
    assert.equal(cache.count, 2, "second was idle and least recently used");
    await waitFor(async () => !(await exists(leaseSecond.dir)), { description: "the evicted tree's directory to be deleted", timeoutMs: 10_000, intervalMs: 5 });
    assert.equal(await readFile(join(leaseFirst.dir, "manifest.yaml"), "utf8"), "1".repeat(100), "leased tree intact");
    assert.ok(await exists(leaseThird.dir));

    leaseFirst.release();
    leaseFirst.release(); // idempotent
    leaseThird.release();
    (await cache.acquire(second)).release();
    assert.equal(server.hitsOf("/second.tar.gz"), 2, "an evicted tree is downloaded again");
    assert.ok(cache.size <= 250);
    assert.equal(cache.count, 2, "first, now idle and least recently used, made room");
    await waitFor(async () => !(await exists(leaseFirst.dir)), { description: "the evicted tree's directory to be deleted", timeoutMs: 10_000, intervalMs: 5 });
    assert.ok(await exists(leaseThird.dir), "third was used more recently and stays");
    await cache.close();
  });

  it("does not cache a failure", async () => {
    const cache = newCache(1 << 20);
    const body = tarGz([{ path: "x", content: "x" }]);
    const artifact = { url: server.url("/later.tar.gz"), revision: "r", digest: computeDigest("sha256", body) };
    await assert.rejects(cache.acquire(artifact), ArtifactError);
    server.serve("/later.tar.gz", body);
    const lease = await cache.acquire(artifact);
    assert.equal(await readFile(join(lease.dir, "x"), "utf8"), "x");
    lease.release();
    await cache.close();
  });

  it("lets a caller stop waiting without cancelling the shared download", async () => {
    const cache = newCache(1 << 20);
    const body = tarGz([{ path: "slow", content: "s" }]);
    server.route("/slow-cache.tar.gz", (_req, res) => void setTimeout(() => res.writeHead(200).end(body), 100));
    const artifact = { url: server.url("/slow-cache.tar.gz"), revision: "r", digest: computeDigest("sha256", body) };
    const controller = new AbortController();
    const impatient = cache.acquire(artifact, controller.signal);
    const patient = cache.acquire(artifact);
    controller.abort(new Error("gave up"));
    await assert.rejects(impatient, /gave up/);
    const lease = await patient;
    assert.equal(await readFile(join(lease.dir, "slow"), "utf8"), "s");
    assert.equal(server.hitsOf("/slow-cache.tar.gz"), 1);
    lease.release();
    await cache.close();
  });

  it("removes its directory on close", async () => {
    const cache = newCache(1 << 20);
    const lease = await cache.acquire(publish("/closing.tar.gz", 10));
    const before = await readdir(work);
    await cache.close();
    await assert.rejects(stat(lease.dir), { code: "ENOENT" });
    assert.equal((await readdir(work)).length, before.length - 1);
    await assert.rejects(cache.acquire(publish("/after-close.tar.gz", 10)), /closed/);
  });
});

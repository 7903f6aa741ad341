import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, mkdir, readdir, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import { FilesystemRollbackStore } from "../../../src/rollback/fs-store.js";
import { RollbackStoreError, type SnapshotOwner } from "../../../src/rollback/store.js";
import { computeDigest } from "../../../src/source/digest.js";

let work: string;
let n = 0;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "fs-store-test-"));
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function freshStore(retain?: number): Promise<FilesystemRollbackStore> {
  return new FilesystemRollbackStore({ root: join(work, `store-${n++}`), retain }).open();
}

const owner: SnapshotOwner = { namespace: "team-a", stageSet: "platform.v2", stage: "crds" };

function blob(size = 4096): { data: Buffer; digest: string } {
  const data = randomBytes(size);
  return { data, digest: computeDigest("sha256", data) };
}

function entryDir(store: FilesystemRollbackStore, o: SnapshotOwner = owner): string {
  return join(store.root, o.namespace, o.stageSet, o.stage);
}

describe("FilesystemRollbackStore", () => {
  it("stores an entry at <root>/<namespace>/<stageset>/<stage>/<algorithm>-<hex>.tar.gz and reads it back", async () => {
    const store = await freshStore();
    const { data, digest } = blob();
    await store.put(owner, digest, data);
    const path = join(entryDir(store), `sha256-${digest.slice("sha256:".length)}.tar.gz`);
    assert.equal(store.entryPath(owner, digest), path);
    assert.deepEqual(await readFile(path), data);
    assert.deepEqual(await store.get(owner, digest), data);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(entryDir(store)), [`sha256-${digest.slice(7)}.tar.gz`], "no temporary file is left behind");
    assert.equal(store.kind, "filesystem");
    assert.match(store.description, /^filesystem \//);
  });

  it("supports every digest algorithm Flux uses", async () => {
    const store = await freshStore();
    for (const algorithm of ["sha384", "sha512", "blake3", "sha1"] as const) {
      const data = randomBytes(1000);
      const digest = computeDigest(algorithm, data);
      await store.put(owner, digest, data);
      assert.deepEqual(await store.get(owner, digest), data, algorithm);
    }
  });

  it("answers undefined for a digest it does not hold", async () => {
    const store = await freshStore();
    assert.equal(await store.get(owner, blob().digest), undefined);
  });

  it("refuses a tarball that does not match its digest and writes nothing", async () => {
    const store = await freshStore();
    const { digest } = blob();
    await assert.rejects(store.put(owner, digest, randomBytes(10)), (err: unknown) => {
      assert.ok(err instanceof RollbackStoreError);
      assert.match(err.message, /does not match digest sha256:/);
      return true;
    });
    assert.equal(await store.get(owner, digest), undefined);
  });

  it("treats a corrupted entry as missing and removes it; the next put repairs it", async () => {
    const store = await freshStore();
    const { data, digest } = blob();
    await store.put(owner, digest, data);
    const path = store.entryPath(owner, digest);
    const flipped = Buffer.from(data);
    flipped[100] = flipped[100]! ^ 0xff;
    await writeFile(path, flipped);
    assert.equal(await store.get(owner, digest), undefined);
    await assert.rejects(stat(path), { code: "ENOENT" }, "the failing entry is removed");

    await writeFile(path, data.subarray(0, 1000)); // a torn write
    await store.put(owner, digest, data);
    assert.deepEqual(await readFile(path), data, "put rewrote the entry that did not verify");
    assert.deepEqual(await store.get(owner, digest), data);
  });

  it("does not follow a symbolic link where an entry should be", async () => {
    const store = await freshStore();
    const { data, digest } = blob();
    const elsewhere = join(work, `outside-${n++}`);
    await writeFile(elsewhere, data);
    await mkdir(entryDir(store), { recursive: true });
    await symlink(elsewhere, store.entryPath(owner, digest));
    assert.equal(await store.get(owner, digest), undefined);
  });

  it("keeps the newest N digests per stage by modification time (default 5)", async () => {
    const store = await freshStore();
    assert.equal(store.retain, 5);
    const other: SnapshotOwner = { ...owner, stage: "apps" };
    const otherBlob = blob();
    await store.put(other, otherBlob.digest, otherBlob.data);
    const blobs = Array.from({ length: 7 }, () => blob(512));
    const base = Date.now() / 1000 - 1000;
    for (const [i, b] of blobs.entries()) {
      await store.put(owner, b.digest, b.data);
      await utimes(store.entryPath(owner, b.digest), base + i, base + i);
    }
    const present = await Promise.all(blobs.map(async (b) => (await store.get(owner, b.digest)) !== undefined));
    assert.deepEqual(present, [false, false, true, true, true, true, true]);
    assert.deepEqual(await store.get(other, otherBlob.digest), otherBlob.data, "retention is per stage");

    // A put of a digest already held makes it the newest: it survives the next puts.
    await store.put(owner, blobs[2]!.digest, blobs[2]!.data);
    const more = [blob(512), blob(512)];
    for (const b of more) await store.put(owner, b.digest, b.data);
    assert.ok(await store.get(owner, blobs[2]!.digest), "the refreshed entry is kept");
    assert.equal(await store.get(owner, blobs[3]!.digest), undefined);
    assert.equal(await store.get(owner, blobs[4]!.digest), undefined);
    assert.equal((await readdir(entryDir(store))).length, 5);
  });

  it("never removes the entry it just stored, even with a clock far ahead on another replica", async () => {
    const store = await freshStore(2);
    const future = Date.now() / 1000 + 86_400;
    const [a, b, c] = [blob(), blob(), blob()];
    await store.put(owner, a.digest, a.data);
    await store.put(owner, b.digest, b.data);
    await utimes(store.entryPath(owner, a.digest), future, future);
    await utimes(store.entryPath(owner, b.digest), future + 1, future + 1);
    await store.put(owner, c.digest, c.data);
    assert.deepEqual(await store.get(owner, c.digest), c.data);
    assert.deepEqual(await store.get(owner, b.digest), b.data);
    assert.equal(await store.get(owner, a.digest), undefined);
  });

  it("removes temporary files a dead writer left behind after an hour, not younger ones", async () => {
    const store = await freshStore();
    const { data, digest } = blob();
    await mkdir(entryDir(store), { recursive: true });
    const stale = join(entryDir(store), `.sha256-${"0".repeat(64)}.tar.gz.1-abc.tmp`);
    const fresh = join(entryDir(store), `.sha256-${"1".repeat(64)}.tar.gz.2-def.tmp`);
    await writeFile(stale, "partial");
    await writeFile(fresh, "in progress");
    const old = Date.now() / 1000 - 7200;
    await utimes(stale, old, old);
    await store.put(owner, digest, data);
    await assert.rejects(stat(stale), { code: "ENOENT" });
    await stat(fresh);
  });

  it("refuses owners and digests that are not safe path components", async () => {
    const store = await freshStore();
    const { data, digest } = blob();
    const bad: SnapshotOwner[] = [
      { ...owner, namespace: ".." },
      { ...owner, namespace: "" },
      { ...owner, stageSet: "a/b" },
      { ...owner, stageSet: "../../etc" },
      { ...owner, stage: "Upper" },
      { ...owner, stage: "x".repeat(64) },
      { ...owner, stage: "." },
    ];
    for (const o of bad) {
      await assert.rejects(store.put(o, digest, data), RollbackStoreError, JSON.stringify(o));
      await assert.rejects(store.get(o, digest), RollbackStoreError, JSON.stringify(o));
    }
    for (const d of ["sha256:../../x", "md5:abcd", "sha256:" + "g".repeat(64), "nodigest"]) {
      await assert.rejects(store.put(owner, d, data), RollbackStoreError, d);
      await assert.rejects(store.get(owner, d), RollbackStoreError, d);
    }
    assert.deepEqual(await readdir(store.root), [], "nothing was written");
  });

  it("refuses a root that is not a usable directory", async () => {
    const file = join(work, `a-file-${n++}`);
    await writeFile(file, "");
    await assert.rejects(new FilesystemRollbackStore({ root: file }).open(), (err: unknown) => {
      assert.ok(err instanceof RollbackStoreError);
      assert.match(err.message, /cannot use the directory/);
      return true;
    });
    assert.throws(() => new FilesystemRollbackStore({ root: "" }), RollbackStoreError);
    assert.throws(() => new FilesystemRollbackStore({ root: "/x", retain: 0 }), RollbackStoreError);
  });

  it("two store instances writing the same digest at once never leave a partial or corrupt entry", async () => {
    const root = join(work, `shared-${n++}`);
    const one = await new FilesystemRollbackStore({ root }).open();
    const two = await new FilesystemRollbackStore({ root }).open();
    const { data, digest } = blob(4 * 1024 * 1024);
    const path = one.entryPath(owner, digest);
    let stop = false;
    let reads = 0;
    // A reader that looks at the entry file itself while the writers race.
    const reader = (async () => {
      while (!stop) {
        try {
          const seen = await readFile(path);
          reads++;
          assert.ok(seen.equals(data), "a reader saw a partial or mixed entry");
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    for (let round = 0; round < 5; round++) {
      await rm(path, { force: true });
      await Promise.all([one.put(owner, digest, data), two.put(owner, digest, data), one.put(owner, digest, data), two.put(owner, digest, data)]);
      assert.deepEqual(await two.get(owner, digest), data);
    }
    stop = true;
    await reader;
    assert.ok(reads > 0);
    assert.deepEqual((await readdir(entryDir(one))).filter((f) => f.startsWith(".")), [], "no temporary files remain");
  });

  it("writers in separate threads on one directory (as replicas on one RWX volume) agree on every entry", async () => {
    const root = join(work, `threads-${n++}`);
    const blobs = Array.from({ length: 6 }, () => blob(512 * 1024));
    const moduleUrl = new URL("../../../src/rollback/fs-store.js", import.meta.url).href;
    const code = `
      const { workerData, parentPort } = require("node:worker_threads");
      import(workerData.moduleUrl).then(async ({ FilesystemRollbackStore }) => {
        const store = await new FilesystemRollbackStore({ root: workerData.root, retain: 10 }).open();
        for (let round = 0; round < 3; round++) {
          for (const b of workerData.blobs) await store.put(workerData.owner, b.digest, Buffer.from(b.data));
        }
        parentPort.postMessage("done");
      }).catch((err) => parentPort.postMessage("error: " + (err && err.stack || err)));
    `;
    const payload = { moduleUrl, root, owner, blobs: blobs.map((b) => ({ digest: b.digest, data: b.data })) };
    const results = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<string>((resolve, reject) => {
            const worker = new Worker(code, { eval: true, workerData: payload });
            worker.once("message", (m: string) => {
              resolve(m);
              void worker.terminate();
            });
            worker.once("error", reject);
          }),
      ),
    );
    assert.deepEqual(results, ["done", "done", "done"]);
    const store = new FilesystemRollbackStore({ root, retain: 10 });
    for (const b of blobs) assert.deepEqual(await store.get(owner, b.digest), b.data);
    const names = await readdir(entryDir(store));
    assert.equal(names.length, blobs.length, `only entries remain: ${names.join(", ")}`);
  });
});

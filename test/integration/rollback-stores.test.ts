// The S3 rollback store against a real S3-compatible server: SeaweedFS
// (`weed mini`, built by hack/tools.sh from tools/seaweedfs), started on
// loopback for this file with static credentials and one bucket. The store is
// built the way the controller builds it, from parsed flags
// (rollbackStoreFromConfig). Needs no cluster.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { parseControllerFlags } from "../../src/config/flags.js";
import { rollbackStoreFromConfig } from "../../src/rollback/config.js";
import { S3RollbackStore } from "../../src/rollback/s3-store.js";
import { RollbackStoreError, type RollbackStore, type SnapshotOwner } from "../../src/rollback/store.js";
import { computeDigest } from "../../src/source/digest.js";
import { silentLogger } from "../../src/util/log.js";
import { S3Server } from "../support/s3-server.js";

const BUCKET = "stageset-rollback";
const server = new S3Server({ buckets: [BUCKET] });
const work = mkdtempSync(join(tmpdir(), "rollback-stores-"));
const savedEnv = { ...process.env };
let admin: S3Client;
const opened: RollbackStore[] = [];

before(async () => {
  await server.start();
  admin = server.client();
});

after(async () => {
  for (const store of opened) if (store instanceof S3RollbackStore) store.destroy();
  admin?.destroy();
  await server.stop();
  process.env = savedEnv;
  rmSync(work, { recursive: true, force: true });
});

/** The environment of a controller with no ambient AWS identity (no files, no metadata service). */
function cleanAwsEnv(): void {
  for (const name of Object.keys(process.env)) if (name.startsWith("AWS_")) delete process.env[name];
  process.env.AWS_EC2_METADATA_DISABLED = "true";
  process.env.AWS_CONFIG_FILE = join(work, "no-aws-config");
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(work, "no-aws-credentials");
}

function flags(extra: string[], bucket = BUCKET): string[] {
  return ["--rollback-store-s3-endpoint", server.endpoint, "--rollback-store-s3-bucket", bucket, "--rollback-store-s3-use-ssl=false", ...extra];
}

function staticKeys(): string[] {
  return ["--rollback-store-s3-access-key", server.accessKey, "--rollback-store-s3-secret-key", server.secretKey];
}

async function storeFrom(argv: string[]): Promise<S3RollbackStore> {
  const store = await rollbackStoreFromConfig(parseControllerFlags(argv).rollbackStore, silentLogger());
  assert.ok(store instanceof S3RollbackStore);
  opened.push(store);
  return store;
}

function blob(size = 64 * 1024): { data: Buffer; digest: string } {
  const data = randomBytes(size);
  return { data, digest: computeDigest("sha256", data) };
}

let stageCounter = 0;
function newOwner(): SnapshotOwner {
  return { namespace: "team-a", stageSet: "platform", stage: `stage-${stageCounter++}` };
}

async function keysUnder(prefix: string): Promise<string[]> {
  const answer = await admin.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (answer.Contents ?? []).map((o) => o.Key!).sort();
}

function expectStoreError(pattern: RegExp, secrets: string[] = [server.secretKey]) {
  return (err: unknown) => {
    assert.ok(err instanceof RollbackStoreError, `not a RollbackStoreError: ${String(err)}`);
    assert.match(err.message, pattern);
    for (const secret of secrets) assert.ok(!err.message.includes(secret), `credential in message: ${err.message}`);
    return true;
  };
}

describe("S3 rollback store against SeaweedFS", () => {
  it("stores and returns an artifact with static keys (SSE-S3 by default, honoured)", async () => {
    cleanAwsEnv();
    const store = await storeFrom(flags(staticKeys()));
    const owner = newOwner();
    const { data, digest } = blob();
    await store.put(owner, digest, data);
    assert.deepEqual(await store.get(owner, digest), data);
    const head = await admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: store.objectKey(owner, digest) }));
    assert.equal(head.ServerSideEncryption, "AES256", "the server reports the object as SSE-S3 encrypted");
    assert.equal(head.Metadata?.["stageset-digest"], digest);
    assert.equal(await store.get(owner, blob().digest), undefined, "a digest never stored is missing");
    assert.ok(!store.description.includes(server.accessKey) && !store.description.includes(server.secretKey));
  });

  it("takes credentials from the environment when no static keys are given", async () => {
    cleanAwsEnv();
    process.env.AWS_ACCESS_KEY_ID = server.accessKey;
    process.env.AWS_SECRET_ACCESS_KEY = server.secretKey;
    try {
      const store = await storeFrom(flags([]));
      const owner = newOwner();
      const { data, digest } = blob();
      await store.put(owner, digest, data);
      assert.deepEqual(await store.get(owner, digest), data);
    } finally {
      cleanAwsEnv();
    }
  });

  it("with no credentials anywhere, or wrong ones, startup fails with a clear error", async () => {
    cleanAwsEnv();
    await assert.rejects(storeFrom(flags([])), expectStoreError(/no credentials|denied|403/));
    await assert.rejects(
      storeFrom(flags(["--rollback-store-s3-access-key", server.accessKey, "--rollback-store-s3-secret-key", "wrong-secret-0123456789"])),
      expectStoreError(/access to the bucket is denied|403/, ["wrong-secret-0123456789", server.secretKey]),
    );
    await assert.rejects(storeFrom(flags(["--rollback-store-s3-anonymous"])), expectStoreError(/denied|403/));
  });

  it("puts the prefix in front of every object key", async () => {
    cleanAwsEnv();
    const store = await storeFrom(flags([...staticKeys(), "--rollback-store-s3-prefix", "tenants/blue/"]));
    const owner = newOwner();
    const { data, digest } = blob();
    await store.put(owner, digest, data);
    const everywhere = (await keysUnder("")).filter((k) => k.includes(`/${owner.stage}/`));
    assert.deepEqual(everywhere, [`tenants/blue/team-a/platform/${owner.stage}/sha256-${digest.slice("sha256:".length)}.tar.gz`], "listing the whole bucket");
    assert.deepEqual(await keysUnder(`tenants/blue/team-a/platform/${owner.stage}/`), [
      `tenants/blue/team-a/platform/${owner.stage}/sha256-${digest.slice("sha256:".length)}.tar.gz`,
    ]);
    assert.deepEqual(await store.get(owner, digest), data);
  });

  it("a bucket that does not exist is a clear error at startup", async () => {
    cleanAwsEnv();
    await assert.rejects(storeFrom(flags(staticKeys(), "no-such-bucket")), expectStoreError(/s3 bucket "no-such-bucket" at http:\/\/127\.0\.0\.1:\d+: the bucket does not exist/));
  });

  it("SSE modes: none and s3 are honoured, kms (no KMS configured on the server) is refused with a RollbackStoreError", async () => {
    cleanAwsEnv();
    const none = await storeFrom(flags([...staticKeys(), "--rollback-store-s3-sse", "none"]));
    const owner = newOwner();
    const plain = blob();
    await none.put(owner, plain.digest, plain.data);
    const head = await admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: none.objectKey(owner, plain.digest) }));
    assert.equal(head.ServerSideEncryption, undefined);
    assert.deepEqual(await none.get(owner, plain.digest), plain.data);

    const kms = await storeFrom(flags([...staticKeys(), "--rollback-store-s3-sse", "kms", "--rollback-store-s3-sse-kms-key", "stageset-test-key"]));
    const refused = blob();
    await assert.rejects(kms.put(owner, refused.digest, refused.data), expectStoreError(/server-side encryption "kms"/));
    assert.equal(await kms.get(owner, refused.digest), undefined, "nothing was stored");

    const kmsDefault = await storeFrom(flags([...staticKeys(), "--rollback-store-s3-sse", "kms"]));
    await assert.rejects(kmsDefault.put(owner, refused.digest, refused.data), expectStoreError(/server-side encryption "kms"/));
  });

  it("treats a tampered object as missing", async () => {
    cleanAwsEnv();
    const store = await storeFrom(flags(staticKeys()));
    const owner = newOwner();
    const { data, digest } = blob();
    await store.put(owner, digest, data);
    const key = store.objectKey(owner, digest);
    const tampered = Buffer.from(data);
    tampered[10] = tampered[10]! ^ 0x01;
    await admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: tampered }));
    const stored = await admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    assert.equal(Buffer.from(await stored.Body!.transformToByteArray()).equals(tampered), true);
    assert.equal(await store.get(owner, digest), undefined);
    // A put of the same digest writes it again.
    await store.put(owner, digest, data);
    assert.deepEqual(await store.get(owner, digest), data);
  });

  it("keeps five digests per stage, always the one just written, and leaves other stages alone", async () => {
    cleanAwsEnv();
    const store = await storeFrom(flags(staticKeys()));
    const owner = newOwner();
    const neighbour = newOwner();
    const other = blob(1024);
    await store.put(neighbour, other.digest, other.data);
    const blobs = Array.from({ length: 7 }, () => blob(1024));
    // Which older ones go depends on LastModified, which has one-second resolution on the server (the
    // order by age is unit-tested at the client boundary); here: the count, the last write, the neighbour.
    for (const b of blobs) {
      await store.put(owner, b.digest, b.data);
      assert.deepEqual(await store.get(owner, b.digest), b.data, "the entry just written is kept");
    }
    const keys = await keysUnder(`team-a/platform/${owner.stage}/`);
    assert.equal(keys.length, 5, keys.join("\n"));
    assert.deepEqual(await store.get(neighbour, other.digest), other.data, "retention is per stage");
  });
});

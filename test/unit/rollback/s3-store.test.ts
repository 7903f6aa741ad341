// The S3 store at the client boundary: what goes over the wire (signing,
// SSE headers, object keys, retention deletes) against a tiny in-memory
// S3 stand-in that records every request. The real server is exercised in
// test/integration/rollback-stores.test.ts.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import { S3RollbackStore, type S3RollbackStoreOptions } from "../../../src/rollback/s3-store.js";
import { RollbackStoreError, type SnapshotOwner } from "../../../src/rollback/store.js";
import { computeDigest } from "../../../src/source/digest.js";

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
}

const objects = new Map<string, { body: Buffer; modified: Date }>();
const seen: Seen[] = [];
let failPut: { status: number; code: string; message: string } | undefined;
let server: Server;
let endpoint = "";
const BUCKET = "rollback";

function xmlError(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", path: url.pathname, query: url.searchParams, headers: req.headers });
      const [, bucket, ...rest] = url.pathname.split("/");
      const key = decodeURIComponent(rest.join("/"));
      if (bucket !== BUCKET) {
        res.writeHead(404, { "content-type": "application/xml" }).end(req.method === "HEAD" ? undefined : xmlError("NoSuchBucket", "no such bucket"));
        return;
      }
      if (req.method === "HEAD" && key === "") return void res.writeHead(200).end();
      if (req.method === "GET" && key === "" && url.searchParams.get("list-type") === "2") {
        const prefix = url.searchParams.get("prefix") ?? "";
        const contents = [...objects.entries()]
          .filter(([k]) => k.startsWith(prefix) && !k.slice(prefix.length).includes("/"))
          .map(
            ([k, o]) =>
              `<Contents><Key>${k}</Key><LastModified>${o.modified.toISOString()}</LastModified><ETag>"${createHash("md5").update(o.body).digest("hex")}"</ETag><Size>${o.body.length}</Size></Contents>`,
          )
          .join("");
        res
          .writeHead(200, { "content-type": "application/xml" })
          .end(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${BUCKET}</Name><Prefix>${prefix}</Prefix><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`);
        return;
      }
      if (req.method === "PUT") {
        if (failPut) {
          res.writeHead(failPut.status, { "content-type": "application/xml" }).end(xmlError(failPut.code, failPut.message));
          return;
        }
        const body = Buffer.concat(chunks);
        objects.set(key, { body, modified: new Date() });
        res.writeHead(200, { etag: `"${createHash("md5").update(body).digest("hex")}"` }).end();
        return;
      }
      if (req.method === "GET") {
        const object = objects.get(key);
        if (!object) return void res.writeHead(404, { "content-type": "application/xml" }).end(xmlError("NoSuchKey", "no such key"));
        res.writeHead(200, { "content-length": object.body.length }).end(object.body);
        return;
      }
      if (req.method === "DELETE") {
        objects.delete(key);
        return void res.writeHead(204).end();
      }
      res.writeHead(400).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  objects.clear();
  seen.length = 0;
  failPut = undefined;
});

const owner: SnapshotOwner = { namespace: "team-a", stageSet: "platform", stage: "crds" };
const ACCESS = "AKIAUNITTESTKEY0001";
const SECRET = "unit-test-secret-key-do-not-print";

function store(options: Partial<S3RollbackStoreOptions> = {}): S3RollbackStore {
  return new S3RollbackStore({
    endpoint,
    bucket: BUCKET,
    useSSL: false,
    accessKey: ACCESS,
    secretKey: SECRET,
    clientConfig: { maxAttempts: 1 },
    ...options,
  });
}

function blob(): { data: Buffer; digest: string } {
  const data = randomBytes(2048);
  return { data, digest: computeDigest("sha256", data) };
}

const puts = () => seen.filter((r) => r.method === "PUT");

describe("S3RollbackStore (client boundary)", () => {
  it("writes <prefix>/<namespace>/<stageset>/<stage>/<algorithm>-<hex>.tar.gz with SSE-S3 by default, signed", async () => {
    const s = store({ prefix: "/tenants/x/" });
    await s.open();
    const { data, digest } = blob();
    await s.put(owner, digest, data);
    const [put] = puts();
    assert.ok(put);
    assert.equal(put.path, `/${BUCKET}/tenants/x/team-a/platform/crds/sha256-${digest.slice(7)}.tar.gz`);
    assert.equal(put.headers["x-amz-server-side-encryption"], "AES256");
    assert.equal(put.headers["x-amz-meta-stageset-digest"], digest);
    assert.match(String(put.headers.authorization), new RegExp(`Credential=${ACCESS}/`));
    assert.deepEqual(await s.get(owner, digest), data);
    assert.equal(s.description, `s3 bucket "${BUCKET}" prefix "tenants/x/" at http://${endpoint}`);
    s.destroy();
  });

  it("sends aws:kms with the key id for sse=kms, nothing for sse=none", async () => {
    const kms = store({ sse: "kms", sseKmsKey: "arn:aws:kms:eu-west-1:111122223333:key/abc" });
    const { data, digest } = blob();
    await kms.put(owner, digest, data);
    assert.equal(puts()[0]?.headers["x-amz-server-side-encryption"], "aws:kms");
    assert.equal(puts()[0]?.headers["x-amz-server-side-encryption-aws-kms-key-id"], "arn:aws:kms:eu-west-1:111122223333:key/abc");
    seen.length = 0;
    const none = store({ sse: "none" });
    const other = blob();
    await none.put(owner, other.digest, other.data);
    assert.equal(puts()[0]?.headers["x-amz-server-side-encryption"], undefined);
    kms.destroy();
    none.destroy();
  });

  it("does not sign requests when anonymous", async () => {
    const s = store({ accessKey: "", secretKey: "", anonymous: true });
    await s.open();
    const { data, digest } = blob();
    await s.put(owner, digest, data);
    assert.ok(seen.length >= 3);
    for (const r of seen) {
      assert.equal(r.headers.authorization, undefined, `${r.method} ${r.path} was signed`);
      assert.equal(r.headers["x-amz-security-token"], undefined);
    }
    s.destroy();
  });

  it("sends the session token with static keys", async () => {
    const s = store({ sessionToken: "FwoGZXIvYXdzEBYaDSESSIONTOKEN" });
    await s.open();
    assert.equal(seen[0]?.headers["x-amz-security-token"], "FwoGZXIvYXdzEBYaDSESSIONTOKEN");
    s.destroy();
  });

  it("skips the upload when the digest is already the newest object, and deletes beyond retention", async () => {
    const s = store({ retain: 2 });
    const blobs = [blob(), blob(), blob()];
    for (const [i, b] of blobs.entries()) {
      await s.put(owner, b.digest, b.data);
      const key = s.objectKey(owner, b.digest).slice(0);
      objects.get(key)!.modified = new Date(Date.UTC(2026, 0, 1, 0, 0, i));
    }
    assert.equal(puts().length, 3);
    assert.equal(objects.size, 2);
    assert.equal(await s.get(owner, blobs[0]!.digest), undefined);
    seen.length = 0;
    await s.put(owner, blobs[2]!.digest, blobs[2]!.data);
    assert.equal(puts().length, 0, "no upload for the newest digest again");
    await s.put(owner, blobs[1]!.digest, blobs[1]!.data);
    assert.equal(puts().length, 1, "an older digest put again is written again, so it becomes the newest");
    s.destroy();
  });

  it("treats an object that does not match its digest as missing", async () => {
    const s = store();
    const { data, digest } = blob();
    await s.put(owner, digest, data);
    objects.get(s.objectKey(owner, digest))!.body = Buffer.from("tampered");
    assert.equal(await s.get(owner, digest), undefined);
    assert.equal(await s.get(owner, blob().digest), undefined, "a missing object is undefined");
    s.destroy();
  });

  it("a missing bucket is a clear error at open()", async () => {
    const s = store({ bucket: "nope" });
    await assert.rejects(s.open(), (err: unknown) => {
      assert.ok(err instanceof RollbackStoreError);
      assert.match(err.message, /s3 bucket "nope" at http:\/\/127\.0\.0\.1:\d+: the bucket does not exist/);
      return true;
    });
    s.destroy();
  });

  it("a refused SSE write is a RollbackStoreError saying so, with no credential in it", async () => {
    const s = store();
    failPut = { status: 400, code: "InvalidArgument", message: `Server side encryption is not supported for ${SECRET} ${ACCESS}` };
    const { data, digest } = blob();
    await assert.rejects(s.put(owner, digest, data), (err: unknown) => {
      assert.ok(err instanceof RollbackStoreError);
      assert.match(err.message, /asked for server-side encryption "s3" \(AES256\)/);
      assert.match(err.message, /InvalidArgument \(HTTP 400\)/);
      assert.ok(!err.message.includes(SECRET), err.message);
      assert.ok(!err.message.includes(ACCESS), err.message);
      return true;
    });
    assert.ok(!s.description.includes(ACCESS) && !s.description.includes(SECRET));
    s.destroy();
  });

  it("an unreachable endpoint is a RollbackStoreError naming the store", async () => {
    const s = store({ endpoint: "127.0.0.1:1" });
    await assert.rejects(s.open(), /s3 bucket "rollback" at http:\/\/127\.0\.0\.1:1: cannot check the bucket: .*ECONNREFUSED/);
    s.destroy();
  });

  it("validates its options", () => {
    assert.throws(() => store({ anonymous: true }), /mutually exclusive/);
    assert.throws(() => store({ secretKey: "" }), /must be set together/);
    assert.throws(() => store({ accessKey: "", secretKey: "", sessionToken: "t" }), /session token needs/);
    assert.throws(() => store({ sse: "s3", sseKmsKey: "k" }), /only used with server-side encryption "kms"/);
    assert.throws(() => store({ endpoint: "https://u:p@host:9000/path" }), (err: unknown) => {
      assert.ok(err instanceof RollbackStoreError);
      assert.ok(!err.message.includes("u:p"));
      return true;
    });
    assert.equal(store({ endpoint: "s3.eu-west-1.amazonaws.com", useSSL: true }).endpointUrl, "https://s3.eu-west-1.amazonaws.com");
    assert.equal(store({ endpoint: "minio.minio.svc:9000" }).endpointUrl, "http://minio.minio.svc:9000");
  });
});

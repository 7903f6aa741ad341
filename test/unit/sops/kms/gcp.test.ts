// GCP Cloud KMS at the client boundary: Cloud KMS cannot run here, so a
// loopback server speaks the REST form of KeyManagementService.Decrypt
// (POST /v1/{name}:decrypt, JSON with base64 bytes) that `@google-cloud/kms`
// sends in its HTTP/1.1 transport, the transport the provider uses. The
// client is Google's own, pointed at the server with apiEndpoint/port/
// protocol and given an OAuth2Client holding a fixed access token;
// Application Default Credentials are exercised only for their "nothing
// configured" answer (with the metadata-server probe turned off).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { OAuth2Client } from "google-auth-library";
import { DecryptionError } from "../../../../src/errors.js";
import { GcpKmsProvider } from "../../../../src/sops/kms/gcp.js";
import { startLoopback, type Loopback, type RecordedRequest } from "./loopback.js";

const DATA_KEY = Buffer.from("abcdefghijklmnopqrstuvwxyz012345");
const RESOURCE = "projects/acme/locations/global/keyRings/sops/cryptoKeys/platform";
const CIPHERTEXT = Buffer.from("CiQAexampleGcpKmsCiphertext-bytes\x00\x01\x02");
const ENC = CIPHERTEXT.toString("base64"); // what sops stores
const TOKEN = "ya29.fake-access-token";
let kms: Loopback;

function cloudKms(req: RecordedRequest) {
  if (req.headers.authorization !== `Bearer ${TOKEN}`) {
    return { status: 401, body: { error: { code: 401, message: "Request had invalid authentication credentials.", status: "UNAUTHENTICATED" } } };
  }
  if (req.method !== "POST" || req.url.split("?")[0] !== `/v1/${RESOURCE}:decrypt`) {
    return { status: 404, body: { error: { code: 404, message: `${req.url} not found.`, status: "NOT_FOUND" } } };
  }
  const body = JSON.parse(req.body) as { name?: string; ciphertext?: string };
  if (body.ciphertext !== ENC) {
    return { status: 400, body: { error: { code: 400, message: "Decryption failed: the ciphertext is invalid.", status: "INVALID_ARGUMENT" } } };
  }
  return { status: 200, body: { plaintext: DATA_KEY.toString("base64"), usedPrimary: true } };
}

function authClient(): OAuth2Client {
  const client = new OAuth2Client();
  client.setCredentials({ access_token: TOKEN, expiry_date: Date.now() + 3_600_000 });
  return client;
}

function provider(): GcpKmsProvider {
  return new GcpKmsProvider({
    clientOptions: { apiEndpoint: "127.0.0.1", port: kms.port, protocol: "http", authClient: authClient() },
  });
}

describe("GCP KMS provider (client boundary)", () => {
  before(async () => {
    kms = await startLoopback(cloudKms);
  });
  after(() => kms.close());
  beforeEach(() => {
    kms.requests.length = 0;
    kms.setHandler(cloudKms);
  });

  test("sends Decrypt{name: resource_id, ciphertext} as sops does and returns the data key", async () => {
    const key = await provider().decryptDataKey({ resource_id: RESOURCE, enc: ENC, created_at: "2026-01-01T00:00:00Z" });
    assert.deepEqual(key, DATA_KEY);
    assert.equal(kms.requests.length, 1);
    const [req] = kms.requests;
    assert.ok(req);
    assert.equal(req.method, "POST");
    assert.equal(req.url.split("?")[0], `/v1/${RESOURCE}:decrypt`);
    assert.equal(req.headers.authorization, `Bearer ${TOKEN}`);
    const body = JSON.parse(req.body) as { ciphertext: string };
    assert.deepEqual(Buffer.from(body.ciphertext, "base64"), CIPHERTEXT);
  });

  test("Cloud KMS's refusals are DecryptionErrors naming the key", async () => {
    kms.setHandler(() => ({
      status: 403,
      body: {
        error: {
          code: 403,
          message: `Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied on resource '${RESOURCE}' (or it may not exist).`,
          status: "PERMISSION_DENIED",
        },
      },
    }));
    await assert.rejects(provider().decryptDataKey({ resource_id: RESOURCE, enc: ENC }), (err: unknown) => {
      assert.ok(err instanceof DecryptionError, `a DecryptionError, got ${String(err)}`);
      assert.match(err.message, new RegExp(`^GCP KMS key ${RESOURCE}: decrypting the data key failed: .*useToDecrypt' denied`));
      assert.ok(!err.message.includes(ENC));
      return true;
    });
    kms.setHandler(cloudKms);
    await assert.rejects(
      provider().decryptDataKey({ resource_id: RESOURCE, enc: Buffer.from("other").toString("base64") }),
      /GCP KMS key .*ciphertext is invalid/,
    );
  });

  test("malformed entries and answers are DecryptionErrors", async () => {
    const p = provider();
    await assert.rejects(p.decryptDataKey({ resource_id: "projects/acme/../x", enc: ENC }), /is not a CryptoKey resource id/);
    await assert.rejects(p.decryptDataKey({ resource_id: RESOURCE, enc: "not base64!" }), /not base64/);
    assert.equal(kms.requests.length, 0);
    kms.setHandler(() => ({ status: 200, body: { plaintext: Buffer.alloc(8).toString("base64") } }));
    await assert.rejects(p.decryptDataKey({ resource_id: RESOURCE, enc: ENC }), /returned 8 bytes where a SOPS data key has 32/);
  });

  test("Application Default Credentials with nothing configured: undefined", async () => {
    const saved = { ...process.env };
    const home = mkdtempSync(join(tmpdir(), "gcp-home-"));
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.HOME = home;
    process.env.CLOUDSDK_CONFIG = join(home, "gcloud");
    process.env.METADATA_SERVER_DETECTION = "none"; // no metadata-server probe from a test
    try {
      const p = new GcpKmsProvider({ clientOptions: { apiEndpoint: "127.0.0.1", port: kms.port, protocol: "http" } });
      assert.equal(await p.decryptDataKey({ resource_id: RESOURCE, enc: ENC }), undefined);
      assert.equal(kms.requests.length, 0);
    } finally {
      process.env = saved;
      rmSync(home, { recursive: true, force: true });
    }
  });
});

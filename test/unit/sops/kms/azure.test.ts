// Azure Key Vault at the client boundary: Key Vault cannot run here, so a
// loopback server speaks the Key Vault keys REST API that
// @azure/keyvault-keys calls (challenge authentication, GET key, POST
// decrypt), holding a real RSA key: the test encrypts a data key with
// RSA-OAEP-256 and encodes it as sops does (unpadded base64url), and the
// server really decrypts what the provider sends. The credential is a fake
// TokenCredential; DefaultAzureCredential itself is exercised only for its
// "nothing configured" answer.
import assert from "node:assert/strict";
import { constants, generateKeyPairSync, privateDecrypt, publicEncrypt, type KeyObject } from "node:crypto";
import { after, before, beforeEach, describe, test } from "node:test";
import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/identity";
import { DecryptionError } from "../../../../src/errors.js";
import { AzureKeyVaultProvider } from "../../../../src/sops/kms/azure.js";
import { startLoopback, type Loopback, type RecordedRequest } from "./loopback.js";

const DATA_KEY = Buffer.from("fedcba9876543210fedcba9876543210");
const KEY_NAME = "sops-key";
const KEY_VERSION = "0123456789abcdef0123456789abcdef";
const TOKEN = "eyJ0eXAiOi.fake-access-token";
let privateKey: KeyObject;
let enc = "";
let vault: Loopback;

class FakeCredential implements TokenCredential {
  calls: { scopes: string[]; tenantId: string | undefined }[] = [];
  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.calls.push({ scopes: Array.isArray(scopes) ? scopes : [scopes], tenantId: options?.tenantId });
    return { token: TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

const challenge = 'Bearer authorization="https://login.microsoftonline.com/tenant-1234", resource="https://vault.azure.net"';

/** Key Vault: a challenge without a token, 403 on GET key (a decrypt-only identity), RSA-OAEP-256 decrypt. */
function keyVault(req: RecordedRequest) {
  if (req.headers.authorization !== `Bearer ${TOKEN}`) {
    return { status: 401, headers: { "www-authenticate": challenge }, body: "" };
  }
  const path = req.url.split("?")[0];
  if (req.method === "GET" && path === `/keys/${KEY_NAME}/${KEY_VERSION}`) {
    return { status: 403, body: { error: { code: "Forbidden", message: "The user does not have keys get permission" } } };
  }
  if (req.method === "POST" && path === `/keys/${KEY_NAME}/${KEY_VERSION}/decrypt`) {
    const { alg, value } = JSON.parse(req.body) as { alg: string; value: string };
    if (alg !== "RSA-OAEP-256") return { status: 400, body: { error: { code: "BadParameter", message: `alg ${alg}` } } };
    try {
      const plain = privateDecrypt(
        { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
        Buffer.from(value, "base64url"),
      );
      return { status: 200, body: { kid: `${vault.url}/keys/${KEY_NAME}/${KEY_VERSION}`, value: plain.toString("base64url") } };
    } catch {
      return { status: 400, body: { error: { code: "BadParameter", message: "Bad Request" } } };
    }
  }
  return { status: 404, body: { error: { code: "KeyNotFound", message: `A key with (name/id) ${path} was not found in this key vault.` } } };
}

function entry(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { vault_url: vault.url, name: KEY_NAME, version: KEY_VERSION, enc, created_at: "2026-01-01T00:00:00Z", ...overrides };
}

function provider(credential: TokenCredential, verify = false): AzureKeyVaultProvider {
  return new AzureKeyVaultProvider({
    credential,
    clientOptions: {
      disableChallengeResourceVerification: !verify,
      allowInsecureConnection: true, // the loopback server speaks plain HTTP; Key Vault itself is HTTPS-only
      retryOptions: { maxRetries: 0 },
    },
  });
}

describe("Azure Key Vault provider (client boundary)", () => {
  before(async () => {
    const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
    privateKey = pair.privateKey;
    const wrapped = publicEncrypt(
      { key: pair.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      DATA_KEY,
    );
    enc = wrapped.toString("base64url"); // Go's base64.RawURLEncoding: no padding
    assert.ok(!enc.includes("="));
    vault = await startLoopback(keyVault);
  });
  after(() => vault.close());
  beforeEach(() => {
    vault.requests.length = 0;
    vault.setHandler(keyVault);
  });

  test("authenticates through the challenge and decrypts with RSA-OAEP-256, as sops does", async () => {
    const credential = new FakeCredential();
    const key = await provider(credential).decryptDataKey(entry());
    assert.deepEqual(key, DATA_KEY);
    assert.deepEqual(credential.calls[0], { scopes: ["https://vault.azure.net/.default"], tenantId: "tenant-1234" });
    const decrypts = vault.requests.filter((r) => r.method === "POST");
    assert.equal(decrypts.length, 1);
    const [req] = decrypts;
    assert.ok(req);
    assert.match(decodeURIComponent(req.url), new RegExp(`^/keys/${KEY_NAME}/${KEY_VERSION}/decrypt\\?api-version=`));
    // The library first reads the key (to do public-key operations locally):
    // without a token (the challenge), then with one; the 403 of a
    // decrypt-only identity sends it to the remote decrypt.
    assert.deepEqual(
      vault.requests.map((r) => `${r.method} ${r.url.split("?")[0]} ${r.headers.authorization ? "token" : "-"}`),
      [
        `GET /keys/${KEY_NAME}/${KEY_VERSION} -`,
        `GET /keys/${KEY_NAME}/${KEY_VERSION} token`,
        `POST /keys/${KEY_NAME}/${KEY_VERSION}/decrypt token`,
      ],
    );
    assert.equal(req.headers.authorization, `Bearer ${TOKEN}`);
    assert.deepEqual(JSON.parse(req.body), { alg: "RSA-OAEP-256", value: enc });
  });

  test("the token is not sent to a host outside the challenge's resource domain", async () => {
    const credential = new FakeCredential();
    await assert.rejects(provider(credential, true).decryptDataKey(entry()), (err: unknown) => {
      assert.ok(err instanceof DecryptionError);
      assert.match(err.message, /does not match the requested domain/);
      return true;
    });
    assert.equal(credential.calls.length, 0);
    assert.ok(vault.requests.every((r) => r.headers.authorization === undefined));
  });

  test("Key Vault's refusals are DecryptionErrors naming the key", async () => {
    vault.setHandler((req) =>
      req.headers.authorization
        ? { status: 403, body: { error: { code: "Forbidden", message: "Caller is not authorized to perform action on resource" } } }
        : { status: 401, headers: { "www-authenticate": challenge }, body: "" },
    );
    await assert.rejects(provider(new FakeCredential()).decryptDataKey(entry()), (err: unknown) => {
      assert.ok(err instanceof DecryptionError);
      assert.match(err.message, new RegExp(`Azure Key Vault key http://127\\.0\\.0\\.1:\\d+/keys/${KEY_NAME}/${KEY_VERSION}: .*not authorized`));
      assert.ok(!err.message.includes(enc));
      return true;
    });
    vault.setHandler(keyVault);
    await assert.rejects(provider(new FakeCredential()).decryptDataKey(entry({ name: "gone" })), /KeyNotFound|was not found/);
  });

  test("malformed entries are refused before any request", async () => {
    const p = provider(new FakeCredential());
    await assert.rejects(p.decryptDataKey(entry({ enc: `${enc}==` })), /not base64url/);
    await assert.rejects(p.decryptDataKey(entry({ name: "../secrets/x" })), /is not a Key Vault key id/);
    await assert.rejects(p.decryptDataKey(entry({ vault_url: "https://vault.example/sub/path" })), /is not a Key Vault key id/);
    assert.equal(vault.requests.length, 0);
  });

  test("DefaultAzureCredential with nothing configured: undefined", async () => {
    const saved = { ...process.env };
    for (const name of Object.keys(process.env)) if (name.startsWith("AZURE_")) delete process.env[name];
    process.env.AZURE_TOKEN_CREDENTIALS = "EnvironmentCredential"; // no instance-metadata probe from a test
    try {
      const p = new AzureKeyVaultProvider({
        clientOptions: { disableChallengeResourceVerification: true, allowInsecureConnection: true, retryOptions: { maxRetries: 0 } },
      });
      assert.equal(await p.decryptDataKey(entry()), undefined);
    } finally {
      process.env = saved;
    }
  });
});

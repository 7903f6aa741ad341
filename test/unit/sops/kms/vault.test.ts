// Vault / OpenBao transit at the client boundary: no Vault or OpenBao server
// builds or runs here (OpenBao's module lists no installable version, and a
// Vault server build is far outside the CI budget), so a loopback server
// speaks the transit decrypt REST call (POST /v1/{engine}/decrypt/{key}, as
// documented by Vault and served unchanged by OpenBao) and the test asserts
// what the provider sends and how it maps each answer.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { DecryptionError } from "../../../../src/errors.js";
import { VaultTransitProvider, vaultAllowlist } from "../../../../src/sops/kms/index.js";
import { startLoopback, type Loopback } from "./loopback.js";

const DATA_KEY = Buffer.from("0123456789abcdef0123456789abcdef");
const ENC = "vault:v1:8SDd3WHDOjf7mq69CyCqYjBXAiQQAVZRkFM13ok481zoCmHnSeDX9vyf7w==";
const home = mkdtempSync(join(tmpdir(), "vault-home-"));
let vault: Loopback;
let other: Loopback;

function entry(address = vault.url, enginePath = "sops/transit", keyName = "app-key"): Record<string, unknown> {
  return { vault_address: address, engine_path: enginePath, key_name: keyName, enc: ENC, created_at: "2026-01-01T00:00:00Z" };
}

/** The transit engine: decrypts ENC for the token "s.good", refuses others as Vault does. */
function transit(req: { method: string; url: string; headers: Record<string, unknown>; body: string }) {
  if (req.headers["x-vault-token"] !== "s.good") return { status: 403, body: { errors: ["permission denied"] } };
  if (req.method !== "POST" || req.url !== "/v1/sops/transit/decrypt/app-key") {
    return { status: 404, body: { errors: [`no handler for route "${req.url}"`] } };
  }
  const { ciphertext } = JSON.parse(req.body) as { ciphertext: string };
  if (ciphertext !== ENC) return { status: 400, body: { errors: ["invalid ciphertext: unable to decrypt"] } };
  return { status: 200, body: { request_id: "r1", data: { plaintext: DATA_KEY.toString("base64") } } };
}

function provider(env: NodeJS.ProcessEnv): VaultTransitProvider {
  return new VaultTransitProvider({ env, homeDir: home, timeoutMs: 5_000 });
}

async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DecryptionError, `a DecryptionError, got ${String(err)}`);
    assert.match(err.message, /HashiCorp Vault transit/);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes("s.good"), "the token is not in the message");
    assert.ok(!err.message.includes(ENC), "the encrypted data key is not in the message");
    return true;
  });
}

describe("Vault transit provider (client boundary)", () => {
  before(async () => {
    vault = await startLoopback(transit);
    other = await startLoopback(() => ({ status: 200, body: { data: { plaintext: DATA_KEY.toString("base64") } } }));
  });
  after(async () => {
    await vault.close();
    await other.close();
    rmSync(home, { recursive: true, force: true });
  });
  beforeEach(() => {
    vault.requests.length = 0;
    other.requests.length = 0;
    vault.setHandler(transit);
    rmSync(join(home, ".vault-token"), { force: true });
  });

  test("sends sops's request (POST /v1/{engine}/decrypt/{key}, the token, the namespace) and returns the data key", async () => {
    const key = await provider({ VAULT_ADDR: vault.url, VAULT_TOKEN: "s.good", VAULT_NAMESPACE: "team-a" }).decryptDataKey(
      entry(),
    );
    assert.deepEqual(key, DATA_KEY);
    assert.equal(vault.requests.length, 1);
    const [req] = vault.requests;
    assert.ok(req);
    assert.equal(req.method, "POST");
    assert.equal(req.url, "/v1/sops/transit/decrypt/app-key");
    assert.equal(req.headers["x-vault-token"], "s.good");
    assert.equal(req.headers["x-vault-namespace"], "team-a");
    assert.equal(req.headers["x-vault-request"], "true");
    assert.deepEqual(JSON.parse(req.body), { ciphertext: ENC });
  });

  test("the token file ~/.vault-token when VAULT_TOKEN is unset (read on every call)", async () => {
    writeFileSync(join(home, ".vault-token"), "s.good\n");
    assert.deepEqual(await provider({ VAULT_ADDR: vault.url }).decryptDataKey(entry()), DATA_KEY);
    assert.equal(vault.requests[0]?.headers["x-vault-token"], "s.good");
  });

  test("no token anywhere: undefined, and nothing is sent", async () => {
    assert.equal(await provider({ VAULT_ADDR: vault.url }).decryptDataKey(entry()), undefined);
    assert.equal(vault.requests.length, 0);
  });

  test("Vault's refusals are DecryptionErrors naming the key and quoting Vault's errors", async () => {
    await rejectsWith(
      provider({ VAULT_ADDR: vault.url, VAULT_TOKEN: "s.revoked" }).decryptDataKey(entry()),
      /key http:\/\/127\.0\.0\.1:\d+\/v1\/sops\/transit\/keys\/app-key: Vault refused .*HTTP 403.*permission denied/,
    );
    await rejectsWith(
      provider({ VAULT_ADDR: vault.url, VAULT_TOKEN: "s.good" }).decryptDataKey({ ...entry(), enc: "vault:v1:AAAA" }),
      /HTTP 400.*invalid ciphertext/,
    );
    await rejectsWith(
      provider({ VAULT_ADDR: vault.url, VAULT_TOKEN: "s.good" }).decryptDataKey(entry(vault.url, "sops/transit", "gone")),
      /HTTP 404/,
    );
  });

  test("the token goes only to VAULT_ADDR or an address SOPS_HC_VAULT_ALLOWLIST allows", async () => {
    // The file names another server: refused before any request.
    await rejectsWith(
      provider({ VAULT_ADDR: vault.url, VAULT_TOKEN: "s.good" }).decryptDataKey(entry(other.url)),
      /sends its Vault token only to VAULT_ADDR or an address SOPS_HC_VAULT_ALLOWLIST allows/,
    );
    // No VAULT_ADDR and no allowlist: nowhere.
    await rejectsWith(provider({ VAULT_TOKEN: "s.good" }).decryptDataKey(entry()), /is neither/);
    assert.equal(other.requests.length + vault.requests.length, 0);

    // An explicit allowlist (sops's variable) admits the other server.
    const allowing = provider({ VAULT_ADDR: vault.url, VAULT_TOKEN: "s.good", SOPS_HC_VAULT_ALLOWLIST: `${vault.url}, ${other.url}` });
    assert.deepEqual(await allowing.decryptDataKey(entry(other.url)), DATA_KEY);
    assert.equal(other.requests.length, 1);
    assert.deepEqual(vaultAllowlist({ SOPS_HC_VAULT_ALLOWLIST: "all" }), "all");
    assert.deepEqual(vaultAllowlist({ SOPS_HC_VAULT_ALLOWLIST: "none", VAULT_ADDR: vault.url }), []);
    assert.deepEqual(vaultAllowlist({ VAULT_ADDR: "https://vault.example:8200" }), ["https://vault.example:8200/"]);
  });

  test("a redirect is followed only to an allowed address", async () => {
    vault.setHandler((req) =>
      req.url.startsWith("/v1/")
        ? { status: 307, headers: { location: `${other.url}${req.url}` }, body: "" }
        : { status: 404 },
    );
    await rejectsWith(
      provider({ VAULT_ADDR: vault.url, VAULT_TOKEN: "s.good" }).decryptDataKey(entry()),
      /redirected to http:\/\/127\.0\.0\.1:\d+, which is not an allowed Vault address/,
    );
    assert.equal(other.requests.length, 0);
    const both = provider({ VAULT_TOKEN: "s.good", SOPS_HC_VAULT_ALLOWLIST: `${vault.url},${other.url}` });
    assert.deepEqual(await both.decryptDataKey(entry()), DATA_KEY);
    assert.equal(other.requests[0]?.url, "/v1/sops/transit/decrypt/app-key");
    assert.deepEqual(JSON.parse(other.requests[0]?.body ?? "{}"), { ciphertext: ENC });
  });

  test("malformed entries and answers are DecryptionErrors", async () => {
    const p = provider({ VAULT_ADDR: vault.url, VAULT_TOKEN: "s.good" });
    await rejectsWith(p.decryptDataKey({ ...entry(), engine_path: "../sys" }), /is not a transit key address/);
    await rejectsWith(p.decryptDataKey({ ...entry(), vault_address: "file:///etc/passwd" }), /is not a transit key address/);
    await rejectsWith(p.decryptDataKey({ ...entry(), enc: undefined }), /has no "enc"/);
    vault.setHandler(() => ({ status: 200, body: { data: { plaintext: Buffer.alloc(16).toString("base64") } } }));
    await rejectsWith(p.decryptDataKey(entry()), /returned 16 bytes where a SOPS data key has 32/);
    vault.setHandler(() => ({ status: 200, body: { data: {} } }));
    await rejectsWith(p.decryptDataKey(entry()), /no base64 data\.plaintext/);
  });

  test("an unreachable Vault is a DecryptionError; the caller's abort is passed through", async () => {
    const closed = await startLoopback(() => ({ status: 200 }));
    const url = closed.url;
    await closed.close();
    await rejectsWith(
      provider({ VAULT_ADDR: url, VAULT_TOKEN: "s.good" }).decryptDataKey(entry(url)),
      /could not reach Vault: .*ECONNREFUSED/,
    );
    const controller = new AbortController();
    // The caller gives up while Vault has the request and never answers.
    vault.setHandler(() => {
      controller.abort(new Error("stage cancelled"));
      return new Promise(() => {});
    });
    const pending = provider({ VAULT_ADDR: vault.url, VAULT_TOKEN: "s.good" }).decryptDataKey(entry(), controller.signal);
    await assert.rejects(pending, /stage cancelled/);
  });
});

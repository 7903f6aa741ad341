// SOPS AWS KMS recipients against a real KMS-compatible server: local-kms
// (github.com/nsmithuk/local-kms, built by hack/tools.sh from tools/local-kms)
// started on loopback for this file. The `sops` binary itself encrypts a file
// to a key created through the KMS API, with an encryption context, and the
// provider must recover the very data key sops used (checked by decrypting
// the value with it). Refusals (unknown key, disabled key, wrong context)
// become DecryptionError naming the key; no credentials at all gives
// undefined. Needs no cluster.
//
// Vault/OpenBao, GCP KMS and Azure Key Vault have no server that builds or
// runs here; they are tested at the client boundary in test/unit/sops/kms/.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createDecipheriv } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CreateKeyCommand, DisableKeyCommand, EncryptCommand, KMSClient } from "@aws-sdk/client-kms";
import { parse } from "yaml";
import { DecryptionError } from "../../src/errors.js";
import { AwsKmsProvider } from "../../src/sops/kms/aws.js";
import { toolPath } from "../../src/util/tools.js";

const REGION = "eu-west-2";
const ACCOUNT = "111122223333";
const work = mkdtempSync(join(tmpdir(), "sops-kms-"));
let server: ChildProcess | undefined;
let endpoint = "";
const savedEnv = { ...process.env };

/** Starts local-kms on a free loopback port; resolves its URL once it prints "listening on". */
function startLocalKms(): Promise<string> {
  const bin = toolPath("local-kms");
  if (bin === "local-kms" && !existsSync(bin)) {
    throw new Error("local-kms is not built: run `hack/tools.sh local-kms` (or `make setup`)");
  }
  const child = spawn(bin, [], {
    env: { PATH: process.env.PATH ?? "", KMS_DATA_PATH: join(work, "db"), KMS_REGION: REGION, KMS_ACCOUNT_ID: ACCOUNT },
    stdio: ["ignore", "pipe", "pipe"],
  });
  server = child;
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`local-kms did not start within 20s: ${stderr}`)), 20_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (127\.0\.0\.1:\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(`http://${match[1]}`);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`local-kms exited with ${code}: ${stderr}`));
    });
  });
}

/** The environment the controller would have: static credentials, the KMS endpoint override, no metadata service. */
function useAmbientCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = "AKIALOCALKMSTEST";
  process.env.AWS_SECRET_ACCESS_KEY = "local-kms-does-not-check-signatures";
  process.env.AWS_ENDPOINT_URL_KMS = endpoint;
  process.env.AWS_EC2_METADATA_DISABLED = "true";
  process.env.AWS_CONFIG_FILE = join(work, "no-aws-config");
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(work, "no-aws-credentials");
  for (const name of [
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
  ]) {
    delete process.env[name];
  }
}

function admin(): KMSClient {
  return new KMSClient({ region: REGION, endpoint, credentials: { accessKeyId: "admin", secretAccessKey: "admin" } });
}

async function createKey(): Promise<string> {
  const out = await admin().send(new CreateKeyCommand({ Description: "stageset sops test" }));
  const arn = out.KeyMetadata?.Arn;
  assert.ok(arn, "CreateKey returned an ARN");
  return arn;
}

/** Decrypts one sops value `ENC[AES256_GCM,data:…,iv:…,tag:…,type:str]` of a top-level key with the data key. */
function decryptValue(dataKey: Buffer, value: string, path: string): string {
  const match = /^ENC\[AES256_GCM,data:([^,]*),iv:([^,]+),tag:([^,]+),type:str\]$/.exec(value);
  assert.ok(match, `a sops value: ${value}`);
  const decipher = createDecipheriv("aes-256-gcm", dataKey, Buffer.from(match[2] as string, "base64"));
  decipher.setAAD(Buffer.from(`${path}:`));
  decipher.setAuthTag(Buffer.from(match[3] as string, "base64"));
  return Buffer.concat([decipher.update(Buffer.from(match[1] as string, "base64")), decipher.final()]).toString();
}

describe("SOPS AWS KMS against local-kms", () => {
  before(async () => {
    endpoint = await startLocalKms();
    useAmbientCredentials();
  });
  after(() => {
    server?.kill("SIGTERM");
    process.env = savedEnv;
    rmSync(work, { recursive: true, force: true });
  });

  test("a file the sops binary encrypted with an encryption context: the provider returns sops's data key", async () => {
    const arn = await createKey();
    const plain = join(work, "secret.yaml");
    writeFileSync(plain, "password: hunter2-kms\n");
    const sops = spawnSync(
      toolPath("sops"),
      ["encrypt", "--kms", arn, "--encryption-context", "Environment:test,Team:platform", plain],
      { encoding: "utf8", env: { ...process.env, SOPS_DISABLE_VERSION_CHECK: "1" }, timeout: 60_000 },
    );
    assert.equal(sops.status, 0, `sops encrypt failed: ${sops.stderr}`);
    const doc = parse(sops.stdout) as { password: string; sops: { kms: Record<string, unknown>[] } };
    const entry = doc.sops.kms[0];
    assert.ok(entry, "sops wrote a kms recipient");
    assert.equal(entry.arn, arn);
    assert.deepEqual(entry.context, { Environment: "test", Team: "platform" });

    const key = await new AwsKmsProvider().decryptDataKey(entry);
    assert.ok(key, "the provider recovered a key");
    assert.equal(key.length, 32);
    assert.equal(decryptValue(key, doc.password, "password"), "hunter2-kms");
  });

  test("an entry made with KMS Encrypt as sops makes it (base64 blob, no context)", async () => {
    const arn = await createKey();
    const dataKey = Buffer.alloc(32, 7);
    const out = await admin().send(new EncryptCommand({ KeyId: arn, Plaintext: dataKey }));
    const enc = Buffer.from(out.CiphertextBlob as Uint8Array).toString("base64");
    const key = await new AwsKmsProvider().decryptDataKey({ arn, enc, created_at: "2026-01-01T00:00:00Z" });
    assert.deepEqual(key, dataKey);
  });

  test("a refusal is a DecryptionError naming the key, never the key material", async (t) => {
    const arn = await createKey();
    const dataKey = Buffer.alloc(32, 9);
    const context = { Environment: "prod" };
    const out = await admin().send(new EncryptCommand({ KeyId: arn, Plaintext: dataKey, EncryptionContext: context }));
    const enc = Buffer.from(out.CiphertextBlob as Uint8Array).toString("base64");
    const provider = new AwsKmsProvider();

    const refused = async (entry: Record<string, unknown>, pattern: RegExp): Promise<void> => {
      await assert.rejects(provider.decryptDataKey(entry), (err: unknown) => {
        assert.ok(err instanceof DecryptionError, `a DecryptionError, got ${String(err)}`);
        assert.equal(err.reason, "DecryptionFailed");
        assert.match(err.message, /AWS KMS key arn:aws:kms:/);
        assert.match(err.message, pattern);
        assert.ok(!err.message.includes(enc), "the encrypted data key is not in the message");
        assert.ok(!err.message.includes(dataKey.toString("base64")), "the data key is not in the message");
        return true;
      });
    };

    await t.test("wrong encryption context", () => refused({ arn, enc, context: { Environment: "dev" } }, /InvalidCiphertext/));
    await t.test("unknown key", () =>
      refused({ arn: `arn:aws:kms:${REGION}:${ACCOUNT}:key/00000000-0000-4000-8000-000000000000`, enc, context }, /NotFound|AccessDenied/),
    );
    await t.test("disabled key", async () => {
      await admin().send(new DisableKeyCommand({ KeyId: arn }));
      await refused({ arn, enc, context }, /Disabled/);
    });
  });

  test("no credentials anywhere: undefined, so the decryptor can say no usable key", async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    try {
      const arn = `arn:aws:kms:${REGION}:${ACCOUNT}:key/00000000-0000-4000-8000-000000000001`;
      const key = await new AwsKmsProvider().decryptDataKey({ arn, enc: Buffer.alloc(64, 1).toString("base64") });
      assert.equal(key, undefined);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  });
});

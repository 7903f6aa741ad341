// SOPS decryption against files the real sops binary (.tools/bin/sops, built
// by hack/tools.sh) encrypts at test time: age keys from age-keygen, a PGP key
// generated here with openpgp and handed to sops through a throw-away
// GNUPGHOME (sops encrypts PGP with gpg; decryption here needs no keyring).
// Each format must come out as `sops -d` prints it.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import * as openpgp from "openpgp";
import { parseAllDocuments } from "yaml";
import { DecryptionError, Reasons } from "../../../src/errors.js";
import { decryptFile, detectSops, parseDecryptionKeys, readKeyFiles, type DecryptionKeys, type KmsProvider } from "../../../src/sops/index.js";
import { toolPath } from "../../../src/util/tools.js";

const run = promisify(execFile);
const SECRET = "s3cr3t-do-not-leak-7f1c";
/** sops encrypts to PGP recipients with gpg (a Debian machine has it; the decryptor itself needs none). */
const HAS_GPG = spawnSync("gpg", ["--version"]).status === 0;

const SECRET_YAML = `# a Secret
apiVersion: v1
kind: Secret
metadata:
  name: payments-db
  namespace: payments
  labels:
    replicas: 3
    mode: 0755
type: Opaque
stringData:
  password: ${SECRET} # the password
  port: 5432
  ratio: 1.50
  enabled: true
  list:
    - one
    - 2
  empty: ""
data:
  token: ${Buffer.from(SECRET).toString("base64")}
`;

/** The Secret as sops -d prints it: go-yaml v3 reads 0755 as the octal int 493. */
const PLAIN_DOCS = parseAllDocuments(SECRET_YAML.replace("mode: 0755", "mode: 493")).map((d) => d.toJSON());

let dir: string;
let gnupgHome: string | undefined;
let ageA: { identity: string; recipient: string; file: string };
let ageB: { identity: string; recipient: string; file: string };
let pgp: { privateKey: string; fingerprint: string } | undefined;

async function ageKey(name: string): Promise<{ identity: string; recipient: string; file: string }> {
  const file = join(dir, `${name}.agekey`);
  await run(toolPath("age-keygen"), ["-o", file]);
  const text = await readFile(file, "utf8");
  const identity = text.split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-"))!;
  const recipient = /public key: (age1\S+)/.exec(text)![1]!;
  return { identity, recipient, file };
}

function sopsEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, ...extra };
  if (gnupgHome) env.GNUPGHOME = gnupgHome;
  return env;
}

/** Encrypts `content` (written to `name`) with the real sops; returns the encrypted bytes. */
async function sopsEncrypt(name: string, content: string | Buffer, args: string[]): Promise<Buffer> {
  const plain = join(dir, name);
  await writeFile(plain, content);
  const { stdout } = await run(toolPath("sops"), ["--disable-version-check", "-e", ...args, plain], {
    env: sopsEnv(),
    encoding: "buffer",
    maxBuffer: 1 << 24,
    cwd: dir,
  });
  return stdout;
}

/** What `sops -d` prints for the encrypted bytes (with key A's and B's identities and the PGP keyring). */
async function sopsDecrypt(name: string, encrypted: Buffer, extraArgs: string[] = []): Promise<Buffer> {
  const path = join(dir, `enc-${name}`);
  await writeFile(path, encrypted);
  const keyFile = join(dir, "all.agekey");
  await writeFile(keyFile, `${ageA.identity}\n${ageB.identity}\n`);
  const { stdout } = await run(toolPath("sops"), ["--disable-version-check", "-d", ...extraArgs, path], {
    env: sopsEnv({ SOPS_AGE_KEY_FILE: keyFile }),
    encoding: "buffer",
    maxBuffer: 1 << 24,
    cwd: dir,
  });
  return stdout;
}

function keysA(): DecryptionKeys {
  return { ageIdentities: [ageA.identity], pgpPrivateKeys: [] };
}

function yamlDocs(text: string | Buffer): unknown[] {
  return parseAllDocuments(text.toString()).map((d) => d.toJSON());
}

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<DecryptionError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DecryptionError, `expected a DecryptionError, got ${String(err)}`);
    assert.equal(err.reason, Reasons.DecryptionFailed);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes(SECRET), "the message must not carry a secret value");
    assert.ok(!err.message.includes(Buffer.from(SECRET).toString("base64")));
    assert.ok(!err.message.includes("AGE-SECRET-KEY"), "the message must not carry key material");
    assert.ok(!err.message.includes("PRIVATE KEY"));
    return err;
  }
  assert.fail("expected the decryption to fail");
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sops-test-"));
  ageA = await ageKey("a");
  ageB = await ageKey("b");
  if (HAS_GPG) {
    gnupgHome = await mkdtemp(join(tmpdir(), "sops-gnupg-"));
    const { privateKey, publicKey } = await openpgp.generateKey({
      userIDs: [{ name: "stageset test", email: "test@example.invalid" }],
      format: "armored",
    });
    const key = await openpgp.readKey({ armoredKey: publicKey });
    await writeFile(join(dir, "pub.asc"), publicKey);
    await run("gpg", ["--batch", "--import", join(dir, "pub.asc")], { env: sopsEnv() });
    pgp = { privateKey, fingerprint: key.getFingerprint().toUpperCase() };
  }
});

after(async () => {
  if (gnupgHome) {
    await run("gpgconf", ["--kill", "all"], { env: sopsEnv() }).catch(() => undefined);
    await rm(gnupgHome, { recursive: true, force: true });
  }
  await rm(dir, { recursive: true, force: true });
});

describe("formats round-trip to what sops -d prints", () => {
  it("a Secret encrypted with --encrypted-regex '^(data|stringData)$' (age)", async () => {
    const enc = await sopsEncrypt("secret.yaml", SECRET_YAML, ["--age", ageA.recipient, "--encrypted-regex", "^(data|stringData)$"]);
    assert.ok(!enc.toString().includes(SECRET));
    assert.match(enc.toString(), /name: payments-db/);
    assert.deepEqual(detectSops("secret.enc.yaml", enc), { format: "yaml" });
    const out = await decryptFile("secret.enc.yaml", enc, { keys: keysA() });
    const expected = await sopsDecrypt("secret.yaml", enc);
    assert.deepEqual(yamlDocs(out), yamlDocs(expected));
    assert.deepEqual(yamlDocs(out), PLAIN_DOCS);
    assert.match(out.toString(), /# the password/);
    assert.ok(!out.toString().includes("sops:"));
  });

  it("a fully encrypted multi-document YAML file", async () => {
    const text = `a: 1\nb: [x, "y"]\n---\n# second\nc:\n  d: ${SECRET}\n`;
    const enc = await sopsEncrypt("multi.yaml", text, ["--age", ageA.recipient]);
    const out = await decryptFile("multi.yaml", enc, { keys: keysA() });
    assert.deepEqual(yamlDocs(out), yamlDocs(await sopsDecrypt("multi.yaml", enc)));
    assert.deepEqual(yamlDocs(out), [{ a: 1, b: ["x", "y"] }, { c: { d: SECRET } }]);
  });

  it("a JSON manifest, byte for byte", async () => {
    const json = JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "cm", labels: { "2": "two", "1": "one" } },
      data: { key: SECRET, html: "<a & b>", nested: [1, 2.5, 1.0, true, null, { x: "\u2028" }], big: "BIG", empty: {} },
    }).replace('"BIG"', "9223372036854775807");
    const enc = await sopsEncrypt("cm.json", json, ["--age", ageA.recipient]);
    assert.deepEqual(detectSops("cm.json", enc), { format: "json" });
    const out = await decryptFile("cm.json", enc, { keys: keysA() });
    assert.equal(out.toString(), (await sopsDecrypt("cm.json", enc)).toString());
  });

  it("a dotenv file, byte for byte", async () => {
    const env = `# database\nDB_PASSWORD=${SECRET}\nMULTI=line one\\nline two\nEMPTY=\nWITH_EQ=a=b\n`;
    const enc = await sopsEncrypt("app.env", env, ["--age", ageA.recipient]);
    assert.deepEqual(detectSops("app.env", enc), { format: "dotenv" });
    const out = await decryptFile("app.env", enc, { keys: keysA() });
    assert.equal(out.toString(), (await sopsDecrypt("app.env", enc)).toString());
    assert.equal(out.toString(), env);
  });

  it("an INI file, byte for byte", async () => {
    const ini = `; top\n[database]\n; the password\npassword = ${SECRET}\nport = 5432\nlonger_key = x\n\n[other]\nname = value with spaces\n`;
    const enc = await sopsEncrypt("app.ini", ini, ["--age", ageA.recipient]);
    assert.deepEqual(detectSops("app.ini", enc), { format: "ini" });
    const out = await decryptFile("app.ini", enc, { keys: keysA() });
    assert.equal(out.toString(), (await sopsDecrypt("app.ini", enc)).toString());
  });

  it("a binary file (--input-type binary), byte for byte", async () => {
    const bin = Buffer.concat([Buffer.from(SECRET), Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13])]);
    const enc = await sopsEncrypt("blob.bin", bin, ["--age", ageA.recipient, "--input-type", "binary"]);
    assert.deepEqual(detectSops("blob.bin", enc), { format: "binary" });
    const out = await decryptFile("blob.bin", enc, { keys: keysA() });
    assert.deepEqual(out, bin);
    assert.deepEqual(out, await sopsDecrypt("blob.bin", enc, ["--input-type", "binary", "--output-type", "binary"]));
  });
});

describe("detection", () => {
  it("files without SOPS metadata are not SOPS files", () => {
    assert.equal(detectSops("cm.yaml", Buffer.from("apiVersion: v1\nkind: ConfigMap\ndata:\n  mac: x\n")), undefined);
    assert.equal(detectSops("x.json", Buffer.from('{"sops": "mac"}')), undefined);
    assert.equal(detectSops("x.env", Buffer.from("sops=mac\n")), undefined);
    assert.equal(detectSops("logo.png", Buffer.from([0x89, 0x50, 0x4e, 0x47])), undefined);
    assert.equal(detectSops("kustomization.yaml", Buffer.from("resources: [a.yaml]\n")), undefined);
  });
});

describe("rules and the MAC", () => {
  it("a tampered encrypted value fails, naming the key path only", async () => {
    const enc = (await sopsEncrypt("t.yaml", SECRET_YAML, ["--age", ageA.recipient, "--encrypted-regex", "^(data|stringData)$"])).toString();
    const tampered = enc.replace(/(password: ENC\[AES256_GCM,data:)([^,]+)/, (_m, p: string, d: string) => p + Buffer.from(d, "base64").reverse().toString("base64"));
    await rejects(decryptFile("t.yaml", Buffer.from(tampered), { keys: keysA() }), /t\.yaml: the value at stringData:password does not decrypt/);
  });

  it("a tampered unencrypted value fails the MAC", async () => {
    const enc = (await sopsEncrypt("t2.yaml", SECRET_YAML, ["--age", ageA.recipient, "--encrypted-regex", "^(data|stringData)$"])).toString();
    await rejects(decryptFile("t2.yaml", Buffer.from(enc.replace("name: payments-db", "name: evil")), { keys: keysA() }), /t2\.yaml: MAC mismatch/);
    // moving encrypted values between keys breaks their additional data
    const swapped = enc.replace(/port: (ENC\[[^\]]+\])/, "port: PLACEHOLDER");
    await rejects(decryptFile("t2.yaml", Buffer.from(swapped), { keys: keysA() }), /stringData:port/);
    // a dropped value fails the MAC
    await rejects(decryptFile("t2.yaml", Buffer.from(enc.replace(/\n +enabled: ENC\[[^\]]+\]/, "")), { keys: keysA() }), /MAC mismatch/);
  });

  it("unencrypted_suffix: the suffixed values stay plain and are covered by the MAC", async () => {
    const text = `user_unencrypted: admin\npassword: ${SECRET}\n`;
    const enc = (await sopsEncrypt("suffix.yaml", text, ["--age", ageA.recipient, "--unencrypted-suffix", "_unencrypted"])).toString();
    assert.match(enc, /user_unencrypted: admin/);
    assert.deepEqual(yamlDocs(await decryptFile("suffix.yaml", Buffer.from(enc), { keys: keysA() })), yamlDocs(text));
    await rejects(decryptFile("suffix.yaml", Buffer.from(enc.replace("admin", "root")), { keys: keysA() }), /MAC mismatch/);
  });

  it("encrypted_suffix and unencrypted_regex", async () => {
    const text = `password_enc: ${SECRET}\nplain: 1\n`;
    const enc = await sopsEncrypt("esuffix.yaml", text, ["--age", ageA.recipient, "--encrypted-suffix", "_enc"]);
    assert.deepEqual(yamlDocs(await decryptFile("esuffix.yaml", enc, { keys: keysA() })), yamlDocs(text));
    const text2 = `meta:\n  name: x\nsecret: ${SECRET}\n`;
    const enc2 = await sopsEncrypt("uregex.yaml", text2, ["--age", ageA.recipient, "--unencrypted-regex", "^meta$"]);
    assert.match(enc2.toString(), /name: x/);
    assert.deepEqual(yamlDocs(await decryptFile("uregex.yaml", enc2, { keys: keysA() })), yamlDocs(text2));
  });

  it("mac_only_encrypted: only encrypted values are covered", async () => {
    const enc = (
      await sopsEncrypt("maconly.yaml", SECRET_YAML, ["--age", ageA.recipient, "--encrypted-regex", "^(data|stringData)$", "--mac-only-encrypted"])
    ).toString();
    assert.match(enc, /mac_only_encrypted: true/);
    const edited = enc.replace("name: payments-db", "name: renamed");
    const out = yamlDocs(await decryptFile("maconly.yaml", Buffer.from(edited), { keys: keysA() }));
    assert.deepEqual(out, yamlDocs(await sopsDecrypt("maconly.yaml", Buffer.from(edited))));
    assert.equal((out[0] as { metadata: { name: string } }).metadata.name, "renamed");
    await rejects(decryptFile("maconly.yaml", Buffer.from(enc.replace(/\n +enabled: ENC\[[^\]]+\]/, "")), { keys: keysA() }), /MAC mismatch/);
  });

  it("encrypted_comment_regex: only values after a marked comment are encrypted", async () => {
    const text = `plain: visible\n# sops:enc\nsecret: ${SECRET}\nother: visible-too\n`;
    const enc = await sopsEncrypt("cregex.yaml", text, ["--age", ageA.recipient, "--encrypted-comment-regex", "sops:enc"]);
    assert.ok(!enc.toString().includes(SECRET));
    assert.match(enc.toString(), /other: visible-too/);
    const out = await decryptFile("cregex.yaml", enc, { keys: keysA() });
    assert.deepEqual(yamlDocs(out), yamlDocs(await sopsDecrypt("cregex.yaml", enc)));
  });

  it("malformed metadata is refused with the field named", async () => {
    const enc = (await sopsEncrypt("bad.yaml", SECRET_YAML, ["--age", ageA.recipient])).toString();
    await rejects(decryptFile("bad.yaml", Buffer.from(enc.replace(/lastmodified: .*/, 'lastmodified: "yesterday"')), { keys: keysA() }), /bad\.yaml: malformed SOPS metadata: sops\.lastmodified/);
    await rejects(decryptFile("plain.yaml", Buffer.from(SECRET_YAML), { keys: keysA() }), /plain\.yaml: no SOPS metadata/);
    await rejects(decryptFile("broken.json", Buffer.from('{"a": '), { keys: keysA() }), /broken\.json: not a readable SOPS json file/);
  });
});

describe("keys and recipients", () => {
  it("a file for another recipient names the recipients and the offered keys", async () => {
    const enc = await sopsEncrypt("forb.yaml", SECRET_YAML, ["--age", ageB.recipient]);
    const err = await rejects(decryptFile("forb.yaml", enc, { keys: keysA() }), /forb\.yaml: cannot recover the data key: no key matches/);
    assert.match(err.message, new RegExp(`encrypted for age ${ageB.recipient}`));
    assert.match(err.message, new RegExp(`offered age identities for ${ageA.recipient}`));
    assert.match(err.message, /no PGP key/);
  });

  it("a file for age and PGP decrypts with either key", async () => {
    assert.ok(HAS_GPG, "gpg is not installed: sops needs it to encrypt to PGP (hack/tools.sh installs the gnupg package)");
    assert.ok(pgp, "the PGP key was generated");
    const enc = await sopsEncrypt("both.yaml", SECRET_YAML, ["--age", ageA.recipient, "--pgp", pgp.fingerprint, "--encrypted-regex", "^(data|stringData)$"]);
    assert.match(enc.toString(), new RegExp(`fp: ${pgp.fingerprint}`));
    const byAge = await decryptFile("both.yaml", enc, { keys: keysA() });
    const byPgp = await decryptFile("both.yaml", enc, { keys: { ageIdentities: [], pgpPrivateKeys: [pgp.privateKey] } });
    assert.deepEqual(yamlDocs(byAge), PLAIN_DOCS);
    assert.deepEqual(yamlDocs(byPgp), PLAIN_DOCS);
    // one key Secret holding an age key that does not match and the PGP key
    const keys = parseDecryptionKeys({
      "other.agekey": Buffer.from(`# created: now\n${ageB.identity}\n`).toString("base64"),
      "pgp.asc": Buffer.from(pgp.privateKey).toString("base64"),
    });
    assert.deepEqual(yamlDocs(await decryptFile("both.yaml", enc, { keys })), PLAIN_DOCS);
    // a PGP-only file, and the recipients named when no key fits
    const pgpOnly = await sopsEncrypt("pgp.env", `TOKEN=${SECRET}\n`, ["--pgp", pgp.fingerprint]);
    assert.equal((await decryptFile("pgp.env", pgpOnly, { keys: { ageIdentities: [], pgpPrivateKeys: [pgp.privateKey] } })).toString(), `TOKEN=${SECRET}\n`);
    await rejects(decryptFile("pgp.env", pgpOnly, { keys: keysA() }), new RegExp(`encrypted for pgp ${pgp.fingerprint}`));
  });

  it("key groups with shamir_threshold combine the shares", async () => {
    const config = join(dir, "shamir.sops.yaml");
    await writeFile(
      config,
      `creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [${ageA.recipient}]\n      - age: [${ageB.recipient}]\n`,
    );
    const enc = await sopsEncrypt("shamir.yaml", `password: ${SECRET}\n`, ["--config", config]);
    assert.match(enc.toString(), /key_groups:/);
    const both = { ageIdentities: [ageA.identity, ageB.identity], pgpPrivateKeys: [] };
    assert.deepEqual(yamlDocs(await decryptFile("shamir.yaml", enc, { keys: both })), [{ password: SECRET }]);
    await rejects(decryptFile("shamir.yaml", enc, { keys: keysA() }), /1 of 2 key groups/);
  });

  it("a KMS recipient goes through the provider seam", async () => {
    // A file whose only recipient is a KMS key: take an age-encrypted file, recover its
    // data key through a recording provider, and swap the age entry for a kms entry
    // (the MAC covers values, not recipients).
    const enc = (await sopsEncrypt("kms.json", JSON.stringify({ password: SECRET }), ["--age", ageA.recipient])).toString();
    const doc = JSON.parse(enc) as { sops: Record<string, unknown> };
    const { recoverDataKey, prepareKeys } = await import("../../../src/sops/datakey.js");
    const dataKey = await recoverDataKey(
      [{ entries: [{ kind: "age", entry: (doc.sops.age as Array<Record<string, unknown>>)[0]! }] }],
      0,
      await prepareKeys(keysA()),
      [],
    );
    const arn = "arn:aws:kms:eu-west-1:111122223333:key/0000-test";
    delete doc.sops.age;
    doc.sops.kms = [{ arn, enc: Buffer.from("wrapped").toString("base64"), created_at: "2024-01-01T00:00:00Z", aws_profile: "" }];
    const kmsFile = Buffer.from(JSON.stringify(doc));
    const seen: unknown[] = [];
    const provider: KmsProvider = {
      kind: "kms",
      decryptDataKey: async (entry) => {
        seen.push(entry.arn);
        return entry.arn === arn ? Buffer.from(dataKey) : undefined;
      },
    };
    const out = await decryptFile("kms.json", kmsFile, { keys: { ageIdentities: [], pgpPrivateKeys: [] }, kms: [provider] });
    assert.equal(JSON.parse(out.toString()).password, SECRET);
    assert.deepEqual(seen, [arn]);
    const unable: KmsProvider = { kind: "kms", decryptDataKey: async () => undefined };
    const err = await rejects(decryptFile("kms.json", kmsFile, { keys: keysA(), kms: [unable] }), /encrypted for kms arn:aws:kms:eu-west-1:111122223333:key\/0000-test/);
    assert.match(err.message, /KMS providers kms/);
    const refusing: KmsProvider = {
      kind: "kms",
      decryptDataKey: async () => {
        throw new Error("AccessDeniedException: not allowed");
      },
    };
    await rejects(decryptFile("kms.json", kmsFile, { keys: keysA(), kms: [refusing] }), /AccessDeniedException/);
  });
});

describe("key sources", () => {
  it("parseDecryptionKeys reads .agekey (several lines, comments) and .asc entries and ignores others", () => {
    const b64 = (s: string): string => Buffer.from(s).toString("base64");
    const keys = parseDecryptionKeys({
      "a.agekey": b64(`# created: 2024-01-01\n# public key: ${ageA.recipient}\n${ageA.identity}\n\n${ageB.identity}\n`),
      "k.asc": b64("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nx\n-----END PGP PRIVATE KEY BLOCK-----\n-----BEGIN PGP PRIVATE KEY BLOCK-----\n\ny\n-----END PGP PRIVATE KEY BLOCK-----\n"),
      "sops.vault-token": b64("token"),
      "README": b64("hello"),
    });
    assert.deepEqual(keys.ageIdentities, [ageA.identity, ageB.identity]);
    assert.equal(keys.pgpPrivateKeys.length, 2);
  });

  it("readKeyFiles reads an age key file as age-keygen writes it", async () => {
    const keys = await readKeyFiles([ageA.file]);
    assert.deepEqual(keys, { ageIdentities: [ageA.identity], pgpPrivateKeys: [] });
    await assert.rejects(readKeyFiles([join(dir, "missing.agekey")]), /cannot read the decryption key file .*missing\.agekey: ENOENT/);
  });

  it("unusable keys are reported without their material", async () => {
    const enc = await sopsEncrypt("unusable.yaml", SECRET_YAML, ["--age", ageB.recipient]);
    const err = await rejects(
      decryptFile("unusable.yaml", enc, { keys: { ageIdentities: ["AGE-SECRET-KEY-1NOTAKEY"], pgpPrivateKeys: ["garbage"] } }),
      /unusable keys: age identity #1 is not a valid age identity; PGP key #1 is not an armored private key/,
    );
    assert.ok(!err.message.includes("NOTAKEY"));
  });
});

/**
 * Recovering a file's 32-byte data key from its recipients: age identities
 * (`age-encryption`), armored PGP private keys (`openpgp`, no keyring), and
 * cloud KMS entries through the given providers. With several key groups
 * (Shamir secret sharing) each group yields a share and `shamir_threshold`
 * shares are combined (HashiCorp's scheme over GF(2^8), as sops vendors it).
 */
import type * as openpgp from "openpgp";
import type { KeyGroup } from "./metadata.js";
import { describeRecipient } from "./metadata.js";
import type { DecryptionKeys, KmsProvider, RecipientEntry } from "./types.js";

// age-encryption and openpgp are imported on first use: ~11 MiB of heap
// together (node 20), held for nothing by a controller without SOPS files.
const loadAge = () => import("age-encryption");
const loadOpenpgp = () => import("openpgp");

/** Why no data key came out; recipients and offered keys are public identifiers only. */
export class NoKeyError extends Error {
  constructor(
    message: string,
    readonly recipients: string[],
  ) {
    super(message);
  }
}

/** Parsed keys, prepared once per set of keys and reused across files. */
export interface PreparedKeys {
  ageIdentities: string[];
  /** The age recipients (public keys) of the identities, for messages. */
  ageRecipients: string[];
  pgpKeys: openpgp.PrivateKey[];
  pgpFingerprints: string[];
  /** Keys that could not be used (bad format, passphrase-protected), described without key material. */
  problems: string[];
}

const prepared = new WeakMap<DecryptionKeys, Promise<PreparedKeys>>();

/** Parses the keys once (cached per DecryptionKeys object). */
export function prepareKeys(keys: DecryptionKeys): Promise<PreparedKeys> {
  let p = prepared.get(keys);
  if (!p) {
    p = doPrepare(keys);
    prepared.set(keys, p);
  }
  return p;
}

async function doPrepare(keys: DecryptionKeys): Promise<PreparedKeys> {
  const out: PreparedKeys = { ageIdentities: [], ageRecipients: [], pgpKeys: [], pgpFingerprints: [], problems: [] };
  const { identityToRecipient } = keys.ageIdentities.length > 0 ? await loadAge() : { identityToRecipient: undefined as never };
  const openpgp = keys.pgpPrivateKeys.length > 0 ? await loadOpenpgp() : (undefined as never);
  for (const [i, id] of keys.ageIdentities.entries()) {
    try {
      out.ageRecipients.push(await identityToRecipient(id));
      out.ageIdentities.push(id);
    } catch {
      out.problems.push(`age identity #${i + 1} is not a valid age identity`);
    }
  }
  for (const [i, text] of keys.pgpPrivateKeys.entries()) {
    let list: openpgp.PrivateKey[];
    try {
      list = await openpgp.readPrivateKeys({ armoredKeys: text });
    } catch {
      out.problems.push(`PGP key #${i + 1} is not an armored private key`);
      continue;
    }
    for (const key of list) {
      const fp = key.getFingerprint().toUpperCase();
      if (!key.isDecrypted()) {
        out.problems.push(`PGP key ${fp} is passphrase-protected (not supported)`);
        continue;
      }
      out.pgpKeys.push(key);
      out.pgpFingerprints.push(fp);
    }
  }
  return out;
}

type Attempt = { ok: Buffer } | { skip: string } | { fail: string };

async function tryAge(entry: RecipientEntry, keys: PreparedKeys): Promise<Attempt> {
  if (keys.ageIdentities.length === 0) return { skip: "no age identity offered" };
  const enc = entry.enc;
  if (typeof enc !== "string" || enc === "") return { fail: "the age entry has no enc" };
  const { armor, Decrypter } = await loadAge();
  const d = new Decrypter();
  for (const id of keys.ageIdentities) d.addIdentity(id);
  let file: Uint8Array;
  try {
    file = armor.decode(normalizeArmor(enc));
  } catch {
    return { fail: "the age entry's enc is not an armored age file" };
  }
  try {
    return { ok: Buffer.from(await d.decrypt(file)) };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (/no identity matched/i.test(msg)) return { skip: "no offered age identity matches" };
    return { fail: `age: ${msg}` };
  }
}

/** age's armor is strict (64-column lines, a final newline); sops' YAML/INI round-trips may lose the trailing newline. */
function normalizeArmor(text: string): string {
  const lines = text
    .replace(/\r\n/g, "\n")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  return lines.join("\n") + "\n";
}

async function tryPgp(entry: RecipientEntry, keys: PreparedKeys): Promise<Attempt> {
  if (keys.pgpKeys.length === 0) return { skip: "no PGP key offered" };
  const enc = entry.enc;
  if (typeof enc !== "string" || enc === "") return { fail: "the pgp entry has no enc" };
  const openpgp = await loadOpenpgp();
  let message: openpgp.Message<Uint8Array>;
  try {
    message = await openpgp.readMessage({ armoredMessage: enc });
  } catch {
    return { fail: "the pgp entry's enc is not an armored PGP message" };
  }
  const wanted = new Set(message.getEncryptionKeyIDs().map((k) => k.toHex()));
  const candidates = keys.pgpKeys.filter((k) => k.getKeys().some((sub) => wanted.has(sub.getKeyID().toHex())));
  if (candidates.length === 0) return { skip: "no offered PGP key matches" };
  try {
    const { data } = await openpgp.decrypt({ message, decryptionKeys: candidates, format: "binary" });
    return { ok: Buffer.from(data) };
  } catch (err) {
    return { fail: `pgp: ${err instanceof Error ? err.message : String(err)}` };
  }
}

async function tryKms(kind: string, entry: RecipientEntry, kms: readonly KmsProvider[], signal?: AbortSignal): Promise<Attempt> {
  const providers = kms.filter((p) => p.kind === kind);
  if (providers.length === 0) return { skip: `no ${kind} provider configured` };
  for (const p of providers) {
    signal?.throwIfAborted();
    try {
      const key = await p.decryptDataKey(entry, signal);
      if (key) return { ok: Buffer.from(key) };
    } catch (err) {
      if (signal?.aborted) throw err;
      return { fail: `${kind}: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  return { skip: `the ${kind} provider cannot use this key` };
}

/** The order sops' default `--decryption-order` gives (age, pgp), then the cloud keys. */
const ORDER: Record<string, number> = { age: 0, pgp: 1 };

async function decryptGroup(group: KeyGroup, keys: PreparedKeys, kms: readonly KmsProvider[], failures: string[], signal?: AbortSignal): Promise<Buffer | undefined> {
  const sorted = [...group.entries].sort((a, b) => (ORDER[a.kind] ?? 2) - (ORDER[b.kind] ?? 2));
  for (const { kind, entry } of sorted) {
    signal?.throwIfAborted();
    const attempt = kind === "age" ? await tryAge(entry, keys) : kind === "pgp" ? await tryPgp(entry, keys) : await tryKms(kind, entry, kms, signal);
    if ("ok" in attempt) return attempt.ok;
    if ("fail" in attempt) failures.push(`${describeRecipient(kind, entry)}: ${attempt.fail}`);
  }
  return undefined;
}

/** Recovers the data key, or throws NoKeyError listing the recipients and what was offered. */
export async function recoverDataKey(
  groups: readonly KeyGroup[],
  shamirThreshold: number,
  keys: PreparedKeys,
  kms: readonly KmsProvider[],
  signal?: AbortSignal,
): Promise<Buffer> {
  const failures: string[] = [];
  const parts: Buffer[] = [];
  const needed = groups.length > 1 ? Math.max(shamirThreshold, 1) : 1;
  for (const group of groups) {
    const part = await decryptGroup(group, keys, kms, failures, signal);
    if (part) parts.push(part);
    if (parts.length >= needed) break;
  }
  if (parts.length >= needed) {
    const key = groups.length > 1 ? shamirCombine(parts) : parts[0]!;
    if (key.length !== 32) throw new NoKeyError("the recovered data key is not 32 bytes", []);
    return key;
  }
  const recipients = groups.flatMap((g) => g.entries.map((e) => describeRecipient(e.kind, e.entry)));
  const offered: string[] = [];
  offered.push(keys.ageRecipients.length > 0 ? `age identities for ${keys.ageRecipients.join(", ")}` : "no age identity");
  offered.push(keys.pgpFingerprints.length > 0 ? `PGP keys ${keys.pgpFingerprints.join(", ")}` : "no PGP key");
  const kinds = [...new Set(kms.map((p) => p.kind))];
  offered.push(kinds.length > 0 ? `KMS providers ${kinds.join(", ")}` : "no KMS provider");
  let message = `no key matches: the file is encrypted for ${recipients.join("; ")}; offered ${offered.join(", ")}`;
  if (groups.length > 1) message += `; ${parts.length} of ${needed} key groups (shamir_threshold) could be opened`;
  if (failures.length > 0) message += `; failures: ${failures.join("; ")}`;
  if (keys.problems.length > 0) message += `; unusable keys: ${keys.problems.join("; ")}`;
  throw new NoKeyError(message, recipients);
}

/** GF(2^8) multiplication (AES polynomial), as in HashiCorp's shamir package. */
function gfMul(a: number, b: number): number {
  let acc = 0;
  for (let i = 7; i >= 0; i--) {
    const bit = (b >> i) & 1;
    acc = ((acc << 1) ^ (acc & 0x80 ? 0x1b : 0)) & 0xff;
    if (bit) acc ^= a;
  }
  return acc;
}

function gfInv(a: number): number {
  // a^254 = a^-1 in GF(2^8)
  let result = 1;
  let base = a;
  let e = 254;
  while (e > 0) {
    if (e & 1) result = gfMul(result, base);
    base = gfMul(base, base);
    e >>= 1;
  }
  return result;
}

/** Combines Shamir shares (each: y bytes then the x coordinate as the last byte). */
export function shamirCombine(parts: readonly Buffer[]): Buffer {
  if (parts.length < 2) throw new NoKeyError("fewer than two key-group shares", []);
  const len = parts[0]!.length;
  if (len < 2 || parts.some((p) => p.length !== len)) throw new NoKeyError("the key-group shares differ in length", []);
  const xs = parts.map((p) => p[len - 1]!);
  if (new Set(xs).size !== xs.length) throw new NoKeyError("duplicate key-group share", []);
  const secret = Buffer.alloc(len - 1);
  for (let idx = 0; idx < len - 1; idx++) {
    let result = 0;
    for (let i = 0; i < parts.length; i++) {
      let basis = 1;
      for (let j = 0; j < parts.length; j++) {
        if (i === j) continue;
        const num = xs[j]!; // x(=0) xor x_j
        const denom = xs[i]! ^ xs[j]!;
        basis = gfMul(basis, gfMul(num, gfInv(denom)));
      }
      result ^= gfMul(parts[i]![idx]!, basis);
    }
    secret[idx] = result;
  }
  return secret;
}

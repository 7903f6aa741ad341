/**
 * The `sops` metadata block: recipients (the data key encrypted to each),
 * `lastmodified`, `mac`, and the encryption rules. Flattened formats (dotenv:
 * `sops_age__list_0__map_enc=…`; INI: a `[sops]` section) are unflattened
 * first, as sops' `stores/flatten.go` does.
 */
import { goRegex, type CryptRules } from "./tree.js";
import type { RecipientEntry, RecipientKind } from "./types.js";

export class MetadataError extends Error {}

export interface KeyGroup {
  entries: Array<{ kind: RecipientKind | "hckms"; entry: RecipientEntry }>;
}

export interface SopsMetadata {
  lastModified: string;
  mac: string;
  rules: CryptRules;
  keyGroups: KeyGroup[];
  shamirThreshold: number;
  version: string;
}

const KINDS: ReadonlyArray<RecipientKind | "hckms"> = ["kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age", "pgp"];

type Plain = string | number | boolean | null | Plain[] | { [k: string]: Plain };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function asString(v: unknown, field: string): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw new MetadataError(`sops.${field} is not a string`);
}

function asBool(v: unknown, field: string): boolean {
  if (v === undefined || v === null || v === "") return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "string" && /^(1|t|T|TRUE|true|True)$/.test(v)) return true;
  if (typeof v === "string" && /^(0|f|F|FALSE|false|False)$/.test(v)) return false;
  throw new MetadataError(`sops.${field} is not a boolean`);
}

function groupFrom(obj: Record<string, unknown>, where: string): KeyGroup {
  const entries: KeyGroup["entries"] = [];
  for (const kind of KINDS) {
    const list = obj[kind];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw new MetadataError(`${where}.${kind} is not a list`);
    for (const [i, entry] of list.entries()) {
      if (!isObject(entry)) throw new MetadataError(`${where}.${kind}[${i}] is not a mapping`);
      entries.push({ kind, entry });
    }
  }
  return { entries };
}

/** Reads the (unflattened) `sops` mapping. Throws MetadataError naming the field. */
export function parseMetadata(raw: unknown): SopsMetadata {
  if (!isObject(raw)) throw new MetadataError("the sops metadata is not a mapping");
  const lastModified = asString(raw.lastmodified, "lastmodified");
  if (!/^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(lastModified)) {
    throw new MetadataError("sops.lastmodified is missing or not an RFC 3339 time");
  }
  const mac = asString(raw.mac, "mac");
  const rules: CryptRules = { macOnlyEncrypted: asBool(raw.mac_only_encrypted, "mac_only_encrypted") };
  let count = 0;
  const text = (field: string): string | undefined => {
    const v = asString(raw[field], field);
    if (v === "") return undefined;
    count++;
    return v;
  };
  const regex = (field: string): RegExp | undefined => {
    const v = text(field);
    if (v === undefined) return undefined;
    try {
      return goRegex(v);
    } catch {
      throw new MetadataError(`sops.${field} is not a regular expression this decryptor understands`);
    }
  };
  rules.unencryptedSuffix = text("unencrypted_suffix");
  rules.encryptedSuffix = text("encrypted_suffix");
  rules.unencryptedRegex = regex("unencrypted_regex");
  rules.encryptedRegex = regex("encrypted_regex");
  rules.unencryptedCommentRegex = regex("unencrypted_comment_regex");
  rules.encryptedCommentRegex = regex("encrypted_comment_regex");
  if (count > 1) {
    throw new MetadataError(
      "more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, unencrypted_comment_regex is set",
    );
  }
  if (count === 0) rules.unencryptedSuffix = "_unencrypted";

  const keyGroups: KeyGroup[] = [];
  const top = groupFrom(raw, "sops");
  if (top.entries.length > 0) {
    keyGroups.push(top);
  } else if (Array.isArray(raw.key_groups) && raw.key_groups.length > 0) {
    for (const [i, g] of raw.key_groups.entries()) {
      if (!isObject(g)) throw new MetadataError(`sops.key_groups[${i}] is not a mapping`);
      keyGroups.push(groupFrom(g, `sops.key_groups[${i}]`));
    }
  } else {
    throw new MetadataError("the sops metadata lists no recipients (no age, pgp, kms, gcp_kms, azure_kv, hc_vault or key_groups)");
  }
  const thresholdRaw = raw.shamir_threshold;
  let shamirThreshold = 0;
  if (thresholdRaw !== undefined && thresholdRaw !== null && thresholdRaw !== "") {
    shamirThreshold = Number(thresholdRaw);
    if (!Number.isInteger(shamirThreshold) || shamirThreshold < 0) throw new MetadataError("sops.shamir_threshold is not a number");
  }
  return { lastModified, mac, rules, keyGroups, shamirThreshold, version: asString(raw.version, "version") };
}

/** Go's `time.Parse(RFC3339)` then `Format(RFC3339)`: the MAC's additional data. */
export function macAdditionalData(lastModified: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(lastModified);
  if (!m) return lastModified;
  const zone = m[3] === "z" || m[3] === "Z" || m[3] === "+00:00" || m[3] === "-00:00" ? "Z" : m[3]!;
  return `${m[1]}T${m[2]}${zone}`;
}

/** A recipient named for a message: public identifiers only (age recipient, PGP fingerprint, KMS ARN, …). */
export function describeRecipient(kind: string, entry: RecipientEntry): string {
  const s = (k: string): string => (typeof entry[k] === "string" ? (entry[k] as string) : "");
  switch (kind) {
    case "age":
      return `age ${s("recipient") || "(no recipient)"}`;
    case "pgp":
      return `pgp ${s("fp") || "(no fingerprint)"}`;
    case "kms":
      return `kms ${s("arn")}${s("role") ? ` (role ${s("role")})` : ""}`;
    case "gcp_kms":
      return `gcp_kms ${s("resource_id")}`;
    case "azure_kv":
      return `azure_kv ${s("vault_url").replace(/\/$/, "")}/keys/${s("name")}/${s("version")}`;
    case "hc_vault":
      return `hc_vault ${s("vault_address").replace(/\/$/, "")}/v1/${s("engine_path")}/keys/${s("key_name")}`;
    case "hckms":
      return `hckms ${s("key_id")}`;
    default:
      return kind;
  }
}

const LIST_SEP = "__list_";

/**
 * Unflattens `{ "age__list_0__map_enc": "…" }` into `{ age: [{ enc: "…" }] }`
 * (sops' stores/flatten.go).
 */
export function unflatten(flat: ReadonlyArray<[string, string]>): Record<string, unknown> {
  const root: { [k: string]: Plain } = {};
  for (const [path, value] of flat) {
    const parts = path.split(/(__map_|__list_)/);
    const tokens: Array<{ map: string } | { list: number }> = [{ map: parts[0]! }];
    for (let i = 1; i + 1 < parts.length; i += 2) {
      const part = parts[i + 1]!;
      if (parts[i] === LIST_SEP) {
        const n = Number(part);
        if (!/^\d+$/.test(part) || n > 10_000) throw new MetadataError("a flattened metadata key has a bad list index");
        tokens.push({ list: n });
      } else {
        tokens.push({ map: part });
      }
    }
    let cur: Plain = root;
    for (let i = 0; i < tokens.length; i++) {
      const tok = tokens[i]!;
      const last = i === tokens.length - 1;
      const nextTok = tokens[i + 1];
      const fresh = (): Plain => (nextTok && "list" in nextTok ? [] : {});
      if ("map" in tok) {
        if (!isObject(cur)) throw new MetadataError(`the flattened metadata key ${path} conflicts with another`);
        const obj = cur as { [k: string]: Plain };
        if (last) obj[tok.map] = value;
        else obj[tok.map] ??= fresh();
        cur = obj[tok.map]!;
      } else {
        if (!Array.isArray(cur)) throw new MetadataError(`the flattened metadata key ${path} conflicts with another`);
        while (cur.length <= tok.list) cur.push(null);
        if (last) cur[tok.list] = value;
        else cur[tok.list] ??= fresh();
        cur = cur[tok.list]!;
      }
    }
  }
  return root;
}

/**
 * SOPS decryption: detect a file that carries SOPS metadata, recover its data
 * key from the first usable recipient (age, PGP, or a cloud KMS through a
 * provider), decrypt every encrypted value, verify the MAC exactly as sops
 * does, and return the plaintext file in the format `sops -d` prints.
 *
 * Error messages name the file and the cause, and the recipients and keys by
 * their public identifiers; never a value, a comment or key material.
 */
import { DecryptionError } from "../errors.js";
import { decryptValue, ValueDecryptError } from "./cipher.js";
import { NoKeyError, prepareKeys, recoverDataKey } from "./datakey.js";
import { macAdditionalData, MetadataError, parseMetadata } from "./metadata.js";
import { MalformedError, type LoadedFile } from "./stores/common.js";
import { loadDotenv } from "./stores/dotenv.js";
import { loadIni } from "./stores/ini.js";
import { jsonHasSops, loadBinary, loadJson } from "./stores/json.js";
import { loadYaml } from "./stores/yaml.js";
import { decryptTree, TreeDecryptError } from "./tree.js";
import type { DecryptionKeys, KmsProvider } from "./types.js";

export type { DecryptionKeys, KmsProvider, RecipientEntry, RecipientKind } from "./types.js";
export { parseDecryptionKeys, readKeyFiles, mergeDecryptionKeys } from "./keys.js";

export type SopsFormat = "yaml" | "json" | "dotenv" | "ini" | "binary";

/** The format sops picks for a path: by extension, anything else binary. */
export function sopsFormatFor(path: string): SopsFormat {
  if (path.endsWith(".yaml") || path.endsWith(".yml")) return "yaml";
  if (path.endsWith(".json")) return "json";
  if (path.endsWith(".env")) return "dotenv";
  if (path.endsWith(".ini")) return "ini";
  return "binary";
}

function hasMacAndTime(meta: unknown): boolean {
  return typeof meta === "object" && meta !== null && "mac" in meta && "lastmodified" in meta;
}

/**
 * Whether a file carries SOPS metadata, judged by its content in the format
 * its name gives it. Cheap for the common file that is not a SOPS file.
 */
export function detectSops(path: string, bytes: Buffer): { format: SopsFormat } | undefined {
  const format = sopsFormatFor(path);
  if (bytes.indexOf("sops") === -1 || bytes.indexOf("mac") === -1) return undefined;
  const text = bytes.toString("utf8");
  try {
    switch (format) {
      case "yaml":
        if (!/^sops:/m.test(text)) return undefined;
        return hasMacAndTime(loadYaml(text).metadata) ? { format } : undefined;
      case "dotenv":
        return /^sops_mac=/m.test(text) && /^sops_lastmodified=/m.test(text) ? { format } : undefined;
      case "ini":
        return /^\s*\[sops\]/m.test(text) && /^\s*mac\s*[=:]/m.test(text) ? { format } : undefined;
      case "json":
        return jsonHasSops(text) ? { format } : undefined;
      case "binary": {
        if (!/^\s*\{/.test(text.slice(0, 64))) return undefined;
        if (!jsonHasSops(text)) return undefined;
        return { format };
      }
    }
  } catch {
    return undefined;
  }
}

export interface DecryptOptions {
  keys: DecryptionKeys;
  kms?: readonly KmsProvider[];
  signal?: AbortSignal;
}

function load(format: SopsFormat, text: string): LoadedFile {
  switch (format) {
    case "yaml":
      return loadYaml(text);
    case "json":
      return loadJson(text);
    case "dotenv":
      return loadDotenv(text);
    case "ini":
      return loadIni(text);
    case "binary":
      return loadBinary(text);
  }
}

/**
 * Decrypts a SOPS file. `path` picks the format (as sops does) and names the
 * file in errors. Throws DecryptionError (reason DecryptionFailed).
 */
export async function decryptFile(path: string, bytes: Buffer, options: DecryptOptions): Promise<Buffer> {
  options.signal?.throwIfAborted();
  const format = sopsFormatFor(path);
  let file: LoadedFile;
  try {
    file = load(format, bytes.toString("utf8"));
  } catch (err) {
    if (err instanceof MalformedError || err instanceof MetadataError) {
      throw new DecryptionError(`${path}: not a readable SOPS ${format} file: ${err.message}`);
    }
    throw err;
  }
  if (file.metadata === undefined) throw new DecryptionError(`${path}: no SOPS metadata (the file is not encrypted with sops)`);
  let meta;
  try {
    meta = parseMetadata(file.metadata);
  } catch (err) {
    if (err instanceof MetadataError) throw new DecryptionError(`${path}: malformed SOPS metadata: ${err.message}`);
    throw err;
  }

  let dataKey: Buffer;
  try {
    dataKey = await recoverDataKey(meta.keyGroups, meta.shamirThreshold, await prepareKeys(options.keys), options.kms ?? [], options.signal);
  } catch (err) {
    if (err instanceof NoKeyError) throw new DecryptionError(`${path}: cannot recover the data key: ${err.message}`);
    throw err;
  }
  try {
    options.signal?.throwIfAborted();
    let computed: string;
    try {
      computed = decryptTree(file.branches, dataKey, meta.rules);
    } catch (err) {
      if (err instanceof TreeDecryptError) {
        throw new DecryptionError(`${path}: ${err.message}; the file was changed after sops encrypted it, or it is damaged`);
      }
      throw err;
    }
    let stored;
    try {
      stored = decryptValue(meta.mac, dataKey, macAdditionalData(meta.lastModified));
    } catch (err) {
      if (err instanceof ValueDecryptError) {
        throw new DecryptionError(`${path}: cannot decrypt the MAC (${err.message}); the metadata was changed after sops encrypted the file`);
      }
      throw err;
    }
    const storedMac = stored.t === "str" ? stored.v.toString("utf8") : "";
    if (storedMac === "" || storedMac !== computed) {
      throw new DecryptionError(
        `${path}: MAC mismatch: the file was changed after sops encrypted it (a value, its order, or the metadata was tampered with or edited by hand)`,
      );
    }
    try {
      return file.emit();
    } catch (err) {
      if (err instanceof MalformedError) throw new DecryptionError(`${path}: cannot write the decrypted ${format} file: ${err.message}`);
      throw err;
    }
  } finally {
    dataKey.fill(0);
  }
}

import { lstat, readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { DecryptionError, StageSetError } from "../errors.js";
import { decryptFile, detectSops, parseDecryptionKeys, type DecryptionKeys, type KmsProvider } from "../sops/index.js";
import type { VarSource } from "./substitute.js";

/** What a stage asks for (`spec.decryption`) and how the keys are found. */
export interface StageDecryption {
  /** `spec.decryption.secretRef.name`: a Secret of the StageSet's namespace with `.agekey`/`.asc` keys, read as the tenant. */
  secretName?: string;
  /** Keys given directly (the CLI's `--decryption-key-file`, `SOPS_AGE_KEY_FILE`). */
  keys?: DecryptionKeys;
  /** Cloud KMS providers (the controller's ambient credentials) for files encrypted to KMS keys. */
  kms?: readonly KmsProvider[];
}

/**
 * The StageDecryption of a StageSet's `spec.decryption`, or undefined when it
 * asks for none. `keys` given directly (the CLI's key files) replace the
 * Secret: offline there is no cluster to read it from.
 */
export function decryptionFor(
  decryption: { provider?: string; secretRef?: { name: string } } | undefined,
  extra: { keys?: DecryptionKeys; kms?: readonly KmsProvider[] } = {},
): StageDecryption | undefined {
  if (!decryption) return undefined;
  const given = extra.keys && (extra.keys.ageIdentities.length > 0 || extra.keys.pgpPrivateKeys.length > 0) ? extra.keys : undefined;
  return {
    ...(given ? { keys: given } : decryption.secretRef ? { secretName: decryption.secretRef.name } : {}),
    ...(extra.kms ? { kms: extra.kms } : {}),
  };
}

/** Files larger than this are not inspected for SOPS metadata (sops holds files in memory too; 64 MiB is beyond any manifest). */
const MAX_SOPS_FILE_BYTES = 64 * 1024 * 1024;

/**
 * Every file of the artifact tree that carries SOPS metadata, decrypted in
 * memory: root-relative path → plaintext (YAML and JSON manifests, and the
 * dotenv, INI, JSON, YAML and binary files generators read). Files without
 * metadata are left out (they are built as they are). Symbolic links are not
 * followed here: kbuild resolves them and finds the decrypted contents under
 * the target's path. The plaintext never touches disk: it goes to kbuild on
 * stdin.
 *
 * Throws DecryptionError naming the stage and the file (no matching key, with
 * the recipients; MAC mismatch; the key Secret missing), or the
 * VarSource's error (RBACDenied when the tenant may not read the Secret).
 */
export async function decryptTree(
  root: string,
  options: { stageIndex: number; stageName: string; namespace: string; decryption: StageDecryption; varSource: VarSource; signal?: AbortSignal },
): Promise<Map<string, Buffer>> {
  const encrypted: { path: string; bytes: Buffer }[] = [];
  for (const path of await regularFiles(root)) {
    const info = await lstat(join(root, path));
    if (info.size > MAX_SOPS_FILE_BYTES) continue;
    const bytes = await readFile(join(root, path));
    if (detectSops(path, bytes)) encrypted.push({ path, bytes });
  }
  const decrypted = new Map<string, Buffer>();
  if (encrypted.length === 0) return decrypted;
  const keys = await stageKeys(options);
  const kms = options.decryption.kms ?? [];
  for (const file of encrypted) {
    options.signal?.throwIfAborted();
    try {
      decrypted.set(file.path, await decryptFile(file.path, file.bytes, { keys, kms, ...(options.signal ? { signal: options.signal } : {}) }));
    } catch (err) {
      if (err instanceof StageSetError) {
        throw new DecryptionError(`stage "${options.stageName}": spec.stages[${options.stageIndex}]: ${err.message}`, { cause: err });
      }
      throw new DecryptionError(`stage "${options.stageName}": spec.stages[${options.stageIndex}]: decrypting ${file.path} failed`, { cause: err });
    }
  }
  return decrypted;
}

/** The keys of the stage: the tenant-read Secret's, plus any given directly. */
async function stageKeys(options: { stageName: string; namespace: string; decryption: StageDecryption; varSource: VarSource }): Promise<DecryptionKeys> {
  const given = options.decryption.keys ?? { ageIdentities: [], pgpPrivateKeys: [] };
  const name = options.decryption.secretName;
  if (!name) return given;
  const secret = await options.varSource.getSecret(options.namespace, name);
  if (!secret) {
    throw new DecryptionError(
      `stage "${options.stageName}": spec.decryption.secretRef: Secret ${options.namespace}/${name} does not exist; create it with the age (.agekey) or PGP (.asc) keys, or fix the name`,
    );
  }
  const fromSecret = parseDecryptionKeys(secret.data ?? {});
  return { ageIdentities: [...fromSecret.ageIdentities, ...given.ageIdentities], pgpPrivateKeys: [...fromSecret.pgpPrivateKeys, ...given.pgpPrivateKeys] };
}

/** Root-relative paths of the regular files under `root` (symbolic links and special files skipped). */
async function regularFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) out.push(relative(root, full).split(sep).join("/"));
    }
  };
  await walk(root);
  return out.sort();
}

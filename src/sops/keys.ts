/**
 * Where decryption keys come from: a Secret's data (`*.agekey` age
 * identities, `*.asc` armored PGP private keys — the conventions of Flux's
 * kustomize-controller) or key files given to the CLI (an age key file as
 * `SOPS_AGE_KEY_FILE` holds it, an armored `.asc` file).
 */
import { readFile } from "node:fs/promises";
import { DecryptionError } from "../errors.js";
import type { DecryptionKeys } from "./types.js";

const PGP_BEGIN = "-----BEGIN PGP PRIVATE KEY BLOCK-----";
const PGP_END = "-----END PGP PRIVATE KEY BLOCK-----";

/** The identities of an age key file: every line that is not empty or a `#` comment. */
export function ageIdentitiesFrom(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

/** The armored private-key blocks of a text (one `.asc` may hold several). */
export function pgpBlocksFrom(text: string): string[] {
  const blocks: string[] = [];
  let from = 0;
  for (;;) {
    const start = text.indexOf(PGP_BEGIN, from);
    if (start === -1) break;
    const end = text.indexOf(PGP_END, start);
    if (end === -1) {
      blocks.push(text.slice(start));
      break;
    }
    blocks.push(text.slice(start, end + PGP_END.length) + "\n");
    from = end + PGP_END.length;
  }
  if (blocks.length === 0 && text.trim() !== "") blocks.push(text);
  return blocks;
}

/**
 * Keys from a Secret's `data` (base64 values): entries ending `.agekey` hold
 * age identities (several lines, `#` comments allowed), entries ending `.asc`
 * armored PGP private keys; other entries are ignored.
 */
export function parseDecryptionKeys(secretData: Readonly<Record<string, string>>): DecryptionKeys {
  const keys: DecryptionKeys = { ageIdentities: [], pgpPrivateKeys: [] };
  for (const name of Object.keys(secretData).sort()) {
    const value = secretData[name];
    if (typeof value !== "string") continue;
    if (name.endsWith(".agekey")) keys.ageIdentities.push(...ageIdentitiesFrom(Buffer.from(value, "base64").toString("utf8")));
    else if (name.endsWith(".asc")) keys.pgpPrivateKeys.push(...pgpBlocksFrom(Buffer.from(value, "base64").toString("utf8")));
  }
  return keys;
}

/**
 * Keys from files (the CLI's `--decryption-key-file`, `SOPS_AGE_KEY_FILE`): a
 * file holding an armored PGP private key block is PGP, any other an age key
 * file.
 */
export async function readKeyFiles(paths: readonly string[]): Promise<DecryptionKeys> {
  const keys: DecryptionKeys = { ageIdentities: [], pgpPrivateKeys: [] };
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
      throw new DecryptionError(`cannot read the decryption key file ${path}: ${code}`);
    }
    if (path.endsWith(".asc") || text.includes(PGP_BEGIN)) keys.pgpPrivateKeys.push(...pgpBlocksFrom(text));
    else keys.ageIdentities.push(...ageIdentitiesFrom(text));
  }
  return keys;
}

/** Both sets of keys together (e.g. the CLI's key files and SOPS_AGE_KEY_FILE). */
export function mergeDecryptionKeys(...sets: readonly DecryptionKeys[]): DecryptionKeys {
  return {
    ageIdentities: sets.flatMap((s) => s.ageIdentities),
    pgpPrivateKeys: sets.flatMap((s) => s.pgpPrivateKeys),
  };
}

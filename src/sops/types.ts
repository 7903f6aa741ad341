/**
 * The seams of SOPS decryption. A SOPS file stores its data key encrypted to
 * each recipient (`sops.age[]`, `sops.pgp[]`, `sops.kms[]`, `sops.gcp_kms[]`,
 * `sops.azure_kv[]`, `sops.hc_vault[]`); decrypting a file means recovering
 * that 32-byte data key from one recipient entry, then decrypting the values
 * with it and verifying the MAC.
 */

/** Private keys the tenant gave (`spec.decryption.secretRef`, or `--decryption-key-file` in the CLI). */
export interface DecryptionKeys {
  /** age identities (`AGE-SECRET-KEY-1…`), from Secret keys ending `.agekey`. */
  ageIdentities: string[];
  /** Armored PGP private keys, from Secret keys ending `.asc`. */
  pgpPrivateKeys: string[];
}

/** One recipient entry of a file's `sops` metadata, as sops writes it (keys in snake_case). */
export type RecipientEntry = Record<string, unknown>;

/** The recipient kinds a SOPS file's metadata may list. */
export type RecipientKind = "age" | "pgp" | "kms" | "gcp_kms" | "azure_kv" | "hc_vault";

/**
 * Recovers the data key from a cloud KMS recipient entry with the
 * controller's own (ambient) credentials. Returns undefined when this
 * provider cannot use the entry (not configured, no access); throws only for
 * a definite failure worth reporting (e.g. the key service refused).
 */
export interface KmsProvider {
  readonly kind: Exclude<RecipientKind, "age" | "pgp">;
  decryptDataKey(entry: RecipientEntry, signal?: AbortSignal): Promise<Buffer | undefined>;
}

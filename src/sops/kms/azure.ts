/**
 * Azure Key Vault recipients (`sops.azure_kv[]`: {vault_url, name, version,
 * enc}), decrypted the way sops does (getsops/sops azkv/keysource.go): `enc`
 * is the unpadded base64url (Go's RawURLEncoding) of the RSA-OAEP-256
 * ciphertext of the data key, decrypted with the Key Vault `decrypt`
 * operation of key `{vault_url}/keys/{name}/{version}`. (sops encrypts with
 * `encrypt`, not `wrapKey`, so the identity needs the keys/decrypt
 * permission; for RSA-OAEP-256 the two are the same transformation.)
 *
 * Client: Microsoft's `@azure/keyvault-keys` CryptographyClient with
 * `@azure/identity`'s DefaultAzureCredential (environment service principal,
 * AKS Workload Identity, managed identity, then developer logins;
 * AZURE_TOKEN_CREDENTIALS=prod keeps only the first three). The client first
 * tries to read the key (to do public-key operations locally); a 403 there
 * falls back to the remote decrypt, so keys/get is not required.
 *
 * The vault URL comes from a tenant's file. The library's challenge-based
 * authentication checks that the vault's host is under the domain of the
 * token's resource (e.g. *.vault.azure.net), so the controller's token is
 * never sent to some other host; that check stays on.
 */
import { DefaultAzureCredential } from "@azure/identity";
import type { TokenCredential } from "@azure/identity";
import { CryptographyClient, type CryptographyClientOptions } from "@azure/keyvault-keys";
import { DecryptionError } from "../../errors.js";
import type { KmsProvider, RecipientEntry } from "../types.js";
import { BoundedCache, checkDataKey, decodeBase64Url, describeCause, field, isAbort, requiredField } from "./common.js";

const PROVIDER = "Azure Key Vault";

export interface AzureKeyVaultProviderOptions {
  /** A credential instead of DefaultAzureCredential (tests; a caller with its own identity). */
  credential?: TokenCredential;
  /** Extra client options (tests: the test server's CA, retry options). */
  clientOptions?: CryptographyClientOptions;
}

/** Whether an identity error means "no credential is configured here", not a refusal. */
function isNoCredentials(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === "CredentialUnavailableError") return true;
  if (err.name === "AggregateAuthenticationError") {
    const errors = (err as { errors?: unknown }).errors;
    return Array.isArray(errors) && errors.every((e) => e instanceof Error && e.name === "CredentialUnavailableError");
  }
  return false;
}

/** `https://host[:port]` of a vault URL, or undefined when it is not one. */
function vaultOrigin(vaultUrl: string): string | undefined {
  let url: URL;
  try {
    url = new URL(vaultUrl);
  } catch {
    return undefined;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
  if (url.username || url.password || url.search || url.hash || (url.pathname !== "/" && url.pathname !== "")) {
    return undefined;
  }
  return url.origin;
}

export class AzureKeyVaultProvider implements KmsProvider {
  readonly kind = "azure_kv" as const;
  private credential: TokenCredential | undefined;
  private readonly clients = new BoundedCache<CryptographyClient>(32);

  constructor(private readonly options: AzureKeyVaultProviderOptions = {}) {}

  async decryptDataKey(entry: RecipientEntry, signal?: AbortSignal): Promise<Buffer | undefined> {
    const vaultUrl = requiredField(entry, "vault_url", PROVIDER);
    const name = requiredField(entry, "name", PROVIDER);
    // sops always records the version; an entry without one means the key's latest version.
    const version = field(entry, "version") ?? "";
    const origin = vaultOrigin(vaultUrl);
    const segment = /^[0-9A-Za-z-]+$/;
    if (!origin || !segment.test(name) || (version !== "" && !segment.test(version))) {
      throw new DecryptionError(`${PROVIDER}: "${vaultUrl}/keys/${name}/${version}" is not a Key Vault key id`);
    }
    const keyId = version ? `${origin}/keys/${name}/${version}` : `${origin}/keys/${name}`;
    const ciphertext = decodeBase64Url(requiredField(entry, "enc", PROVIDER));
    if (!ciphertext || ciphertext.length === 0) {
      throw new DecryptionError(`${PROVIDER} key ${keyId}: the encrypted data key is not base64url`);
    }
    try {
      const client = this.clients.getOrCreate(keyId, () => {
        this.credential ??= this.options.credential ?? new DefaultAzureCredential();
        return new CryptographyClient(keyId, this.credential, this.options.clientOptions);
      });
      const result = await client.decrypt({ algorithm: "RSA-OAEP-256", ciphertext }, { abortSignal: signal });
      return checkDataKey(result.result, PROVIDER, keyId);
    } catch (err) {
      if (err instanceof DecryptionError) throw err;
      if (isAbort(err, signal)) throw err;
      if (isNoCredentials(err)) return undefined;
      throw new DecryptionError(`${PROVIDER} key ${keyId}: decrypting the data key failed: ${describeCause(err)}`, {
        cause: err,
      });
    }
  }
}

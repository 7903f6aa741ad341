/**
 * GCP Cloud KMS recipients (`sops.gcp_kms[]`: {resource_id, enc}), decrypted
 * the way sops does (getsops/sops gcpkms/keysource.go): `enc` is the standard
 * base64 of the ciphertext (kept for compatibility with sops ≤ 3.8, whose
 * client took base64 strings), sent as DecryptRequest{name: resource_id,
 * ciphertext} to KeyManagementService.Decrypt.
 *
 * Client: Google's `@google-cloud/kms` in its HTTP/1.1 REST transport
 * (`fallback: true`; the same RPC as gRPC, as JSON over
 * `POST /v1/{resource_id}:decrypt`): one request per decryption needs no
 * long-lived HTTP/2 channel, and it is the transport the test exercises.
 * Credentials: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS,
 * the gcloud ADC file, GKE Workload Identity / the metadata server). The
 * endpoint is Google's; nothing in the SOPS file picks it.
 */
import { KeyManagementServiceClient } from "@google-cloud/kms";
import { DecryptionError } from "../../errors.js";
import type { KmsProvider, RecipientEntry } from "../types.js";
import { checkDataKey, decodeBase64, describeCause, isAbort, raceAbort, requiredField } from "./common.js";

const PROVIDER = "GCP KMS";

/** A CryptoKey resource name (Decrypt takes the key, not a version). */
const RESOURCE_ID = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/;

export type GcpKmsClientOptions = NonNullable<ConstructorParameters<typeof KeyManagementServiceClient>[0]>;

export interface GcpKmsProviderOptions {
  /** Extra client options (tests: apiEndpoint, port, protocol, authClient). */
  clientOptions?: GcpKmsClientOptions;
}

/** google-auth-library's message when Application Default Credentials find nothing. */
function isNoCredentials(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith("Could not load the default credentials");
}

export class GcpKmsProvider implements KmsProvider {
  readonly kind = "gcp_kms" as const;
  private client: KeyManagementServiceClient | undefined;

  constructor(private readonly options: GcpKmsProviderOptions = {}) {}

  async decryptDataKey(entry: RecipientEntry, signal?: AbortSignal): Promise<Buffer | undefined> {
    const resourceId = requiredField(entry, "resource_id", PROVIDER);
    if (!RESOURCE_ID.test(resourceId)) {
      throw new DecryptionError(
        `${PROVIDER}: "${resourceId}" is not a CryptoKey resource id (projects/…/locations/…/keyRings/…/cryptoKeys/…)`,
      );
    }
    const ciphertext = decodeBase64(requiredField(entry, "enc", PROVIDER));
    if (!ciphertext || ciphertext.length === 0) {
      throw new DecryptionError(`${PROVIDER} key ${resourceId}: the encrypted data key is not base64`);
    }
    this.client ??= new KeyManagementServiceClient({ fallback: true, ...this.options.clientOptions });
    try {
      // Resolve the credentials first: a client whose first call finds no
      // credentials is left with a rejected stub (and stray rejections), so
      // "not configured" is decided before the client is initialized.
      const auth: unknown = this.client.auth;
      if (auth && typeof (auth as { getClient?: unknown }).getClient === "function") {
        await raceAbort((auth as { getClient: () => Promise<unknown> }).getClient(), signal);
      }
      const [response] = await raceAbort(this.client.decrypt({ name: resourceId, ciphertext }), signal);
      const plaintext = response.plaintext;
      if (plaintext === null || plaintext === undefined || plaintext.length === 0) {
        throw new DecryptionError(`${PROVIDER} key ${resourceId}: Decrypt returned no plaintext`);
      }
      const bytes = typeof plaintext === "string" ? Buffer.from(plaintext, "base64") : plaintext;
      return checkDataKey(bytes, PROVIDER, resourceId);
    } catch (err) {
      if (err instanceof DecryptionError) throw err;
      if (isAbort(err, signal)) throw err;
      if (isNoCredentials(err)) return undefined;
      throw new DecryptionError(`${PROVIDER} key ${resourceId}: decrypting the data key failed: ${describeCause(err)}`, {
        cause: err,
      });
    }
  }
}

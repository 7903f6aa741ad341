/**
 * The cloud KMS providers of SOPS decryption. They use the controller's own
 * (ambient) credentials, never a tenant's Secret; see docs/architecture.md,
 * "SOPS cloud KMS", for which credentials each reads and how each is tested.
 */
import type { KmsProvider, RecipientEntry } from "../types.js";
import { VaultTransitProvider } from "./vault.js";

// The vendor providers are imported from their own modules (./aws.js,
// ./gcp.js, ./azure.js), never re-exported here: a re-export would load
// their SDKs with this module.
export { VaultTransitProvider, vaultAllowlist, type VaultTransitProviderOptions } from "./vault.js";

/**
 * A provider whose module (and vendor SDK) is imported on its first entry.
 * The AWS, GCP and Azure SDKs are ~35 MiB of heap and ~0.5 s of start-up
 * together (measured with node 20 on the two-core machine: @google-cloud/kms
 * alone 10 MiB, 150 ms), which a controller that never meets such an entry
 * should not pay for in resident memory.
 */
class LazyKmsProvider implements KmsProvider {
  #loaded: Promise<KmsProvider> | undefined;

  constructor(
    readonly kind: KmsProvider["kind"],
    private readonly load: () => Promise<KmsProvider>,
  ) {}

  async decryptDataKey(entry: RecipientEntry, signal?: AbortSignal): Promise<Buffer | undefined> {
    this.#loaded ??= this.load();
    return (await this.#loaded).decryptDataKey(entry, signal);
  }
}

/**
 * One provider per recipient kind (`kms`, `gcp_kms`, `azure_kv`,
 * `hc_vault`), each with the default credential chain of its vendor.
 * Constructing them does no I/O; clients and credentials are created on the
 * first entry of their kind, so a process that never meets such an entry
 * never looks for credentials (which, for AWS, GCP and Azure, may probe the
 * cloud's instance-metadata address), nor loads the vendor's SDK.
 */
export function defaultKmsProviders(): KmsProvider[] {
  return [
    new LazyKmsProvider("kms", async () => new (await import("./aws.js")).AwsKmsProvider()),
    new LazyKmsProvider("gcp_kms", async () => new (await import("./gcp.js")).GcpKmsProvider()),
    new LazyKmsProvider("azure_kv", async () => new (await import("./azure.js")).AzureKeyVaultProvider()),
    new VaultTransitProvider(),
  ];
}

/**
 * The cloud KMS providers of SOPS decryption. They use the controller's own
 * (ambient) credentials, never a tenant's Secret; see docs/architecture.md,
 * "SOPS cloud KMS", for which credentials each reads and how each is tested.
 */
import type { KmsProvider } from "../types.js";
import { AwsKmsProvider } from "./aws.js";
import { AzureKeyVaultProvider } from "./azure.js";
import { GcpKmsProvider } from "./gcp.js";
import { VaultTransitProvider } from "./vault.js";

export { AwsKmsProvider, encryptionContext, type AwsKmsProviderOptions } from "./aws.js";
export { AzureKeyVaultProvider, type AzureKeyVaultProviderOptions } from "./azure.js";
export { GcpKmsProvider, type GcpKmsProviderOptions } from "./gcp.js";
export { VaultTransitProvider, vaultAllowlist, type VaultTransitProviderOptions } from "./vault.js";

/**
 * One provider per recipient kind (`kms`, `gcp_kms`, `azure_kv`,
 * `hc_vault`), each with the default credential chain of its vendor.
 * Constructing them does no I/O; clients and credentials are created on the
 * first entry of their kind, so a process that never meets such an entry
 * never looks for credentials (which, for AWS, GCP and Azure, may probe the
 * cloud's instance-metadata address).
 */
export function defaultKmsProviders(): KmsProvider[] {
  return [new AwsKmsProvider(), new GcpKmsProvider(), new AzureKeyVaultProvider(), new VaultTransitProvider()];
}

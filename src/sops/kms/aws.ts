/**
 * AWS KMS recipients (`sops.kms[]`: {arn, role?, context?, aws_profile?, enc}),
 * decrypted the way sops does (getsops/sops kms/keysource.go):
 * `enc` is the standard-base64 CiphertextBlob; KMS Decrypt is called with
 * KeyId = the ARN and the entry's `context` as EncryptionContext (a context
 * with a non-string value is dropped, as sops's ParseKMSContext does); the
 * region comes from the ARN; with `role`, that role is assumed through STS
 * first (session name `sops@<hostname>`); `aws_profile` selects a shared
 * config profile.
 *
 * Credentials: the AWS SDK's standard chain (environment, shared files, web
 * identity / IRSA, ECS container credentials, EC2 instance metadata). The
 * endpoint is the SDK's own: AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL (and
 * AWS_ENDPOINT_URL_STS) override it, which is how the test points it at a
 * local KMS-compatible server. Nothing from the SOPS file picks an endpoint.
 */
import { hostname } from "node:os";
import { DecryptCommand, KMSClient, type KMSClientConfig } from "@aws-sdk/client-kms";
import { fromTemporaryCredentials } from "@aws-sdk/credential-providers";
import { DecryptionError } from "../../errors.js";
import type { KmsProvider, RecipientEntry } from "../types.js";
import { BoundedCache, checkDataKey, decodeBase64, describeCause, field, isAbort, requiredField } from "./common.js";

const PROVIDER = "AWS KMS";

/**
 * sops's arnRegex, with the region narrowed to what a region name can be: the
 * region becomes part of the endpoint's host name, and the ARN comes from a
 * tenant's file.
 */
const ARN = /^arn:aws[\w-]*:kms:([a-z0-9-]+):[0-9]+:(key|alias)\/.+$/;

/** STS RoleSessionName: at most 64 characters of [\w+=,.@-] (sops's stsSessionRegex and limit). */
function sessionName(): string {
  return `sops@${hostname().replace(/[^\w+=,.@-]/g, "")}`.slice(0, 64);
}

export interface AwsKmsProviderOptions {
  /** Credentials instead of the SDK's default chain (tests; a caller with its own identity). */
  credentials?: NonNullable<KMSClientConfig["credentials"]>;
  /** Extra KMS client configuration (tests: maxAttempts, requestHandler). Never an endpoint from a file. */
  clientConfig?: Partial<KMSClientConfig>;
}

/** The EncryptionContext of an entry, as sops builds it: a map of strings, or nothing. */
export function encryptionContext(entry: RecipientEntry): Record<string, string> | undefined {
  const raw = entry.context;
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== "object" || Array.isArray(raw)) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof value !== "string") return undefined;
    out[key] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Whether an SDK error means "no credentials could be found", not a refusal. */
function isNoCredentials(err: unknown): boolean {
  return err instanceof Error && err.name === "CredentialsProviderError";
}

export class AwsKmsProvider implements KmsProvider {
  readonly kind = "kms" as const;
  private readonly clients = new BoundedCache<KMSClient>(32);

  constructor(private readonly options: AwsKmsProviderOptions = {}) {}

  async decryptDataKey(entry: RecipientEntry, signal?: AbortSignal): Promise<Buffer | undefined> {
    const arn = requiredField(entry, "arn", PROVIDER);
    const role = field(entry, "role");
    const profile = field(entry, "aws_profile");
    const keyId = role ? `${arn} (role ${role})` : arn;
    const match = ARN.exec(arn);
    if (!match) throw new DecryptionError(`${PROVIDER}: "${arn}" is not a KMS key or alias ARN`);
    const region = match[1] as string;
    const blob = decodeBase64(requiredField(entry, "enc", PROVIDER));
    if (!blob || blob.length === 0) {
      throw new DecryptionError(`${PROVIDER} key ${keyId}: the encrypted data key is not base64`);
    }

    const client = this.client(region, role, profile);
    try {
      const out = await client.send(
        new DecryptCommand({ KeyId: arn, CiphertextBlob: blob, EncryptionContext: encryptionContext(entry) }),
        { abortSignal: signal },
      );
      if (!out.Plaintext) throw new DecryptionError(`${PROVIDER} key ${keyId}: Decrypt returned no plaintext`);
      return checkDataKey(out.Plaintext, PROVIDER, keyId);
    } catch (err) {
      if (err instanceof DecryptionError) throw err;
      if (isAbort(err, signal)) throw err;
      if (isNoCredentials(err)) return undefined;
      throw new DecryptionError(`${PROVIDER} key ${keyId}: decrypting the data key failed: ${describeCause(err)}`, {
        cause: err,
      });
    }
  }

  private client(region: string, role: string | undefined, profile: string | undefined): KMSClient {
    return this.clients.getOrCreate(JSON.stringify([region, role ?? "", profile ?? ""]), () => {
      let credentials: KMSClientConfig["credentials"] = this.options.credentials;
      if (role) {
        credentials = fromTemporaryCredentials({
          params: { RoleArn: role, RoleSessionName: sessionName() },
          clientConfig: { region, ...(profile ? { profile } : {}) },
          ...(this.options.credentials ? { masterCredentials: this.options.credentials } : {}),
        });
      }
      return new KMSClient({
        region,
        ...(profile ? { profile } : {}),
        ...(credentials ? { credentials } : {}),
        ...this.options.clientConfig,
      });
    });
  }
}

/**
 * The S3 rollback store (`--rollback-store-s3-*`), on the AWS SDK's S3 client,
 * for AWS S3 and S3-compatible servers (MinIO, SeaweedFS, Ceph RGW, …).
 *
 * Object keys: `<prefix>/<namespace>/<stageset>/<stage>/<algorithm>-<hex>.tar.gz`
 * (no prefix: the key starts at the namespace; every owner segment a checked
 * DNS-1123 name). The digest's `:` becomes `-`, as in the filesystem store, so
 * keys need no escaping anywhere. The object holds the artifact tarball exactly
 * as fetched, with its digest as `x-amz-meta-stageset-digest`.
 *
 * Endpoint: `host[:port]`, reached over https, or http with use-ssl=false
 * (a full `http(s)://` URL is taken as it is). AWS hosts (`*.amazonaws.com`)
 * are addressed virtual-host style, others path style (what S3-compatible
 * servers expect); the region defaults to the one in an AWS host name, else
 * us-east-1.
 *
 * Credentials, in order: anonymous (requests are not signed); static keys
 * (with an optional session token); otherwise the SDK's default chain —
 * environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN),
 * shared config files, web identity token file (AWS_ROLE_ARN +
 * AWS_WEB_IDENTITY_TOKEN_FILE, as IRSA sets them on EKS), container
 * credentials (ECS, EKS Pod Identity) and EC2 instance metadata. No credential
 * ever appears in a message, a log line or `description`.
 *
 * Server-side encryption on every write: `s3` (`x-amz-server-side-encryption:
 * AES256`, the default), `kms` (`aws:kms`, with the given key id or the
 * bucket's default KMS key), or `none`. A server that refuses the header fails
 * the put with a RollbackStoreError.
 *
 * put() lists the owner's objects first: when the digest is already the newest
 * object with the same size (and, without SSE-KMS, the same MD5 ETag), nothing
 * is uploaded; otherwise the object is written (a single PUT: atomic in S3).
 * Then the objects beyond retention (the newest `retain` by LastModified,
 * never the one just put) are deleted. get() hashes the object again; one
 * that does not verify is treated as missing.
 */
import { createHash } from "node:crypto";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type PutObjectCommandInput,
  type S3ClientConfig,
  type _Object,
} from "@aws-sdk/client-s3";
import type { Logger } from "../util/log.js";
import {
  beyondRetention,
  checkDigest,
  checkRetain,
  checkTarball,
  describeOwner,
  ENTRY_NAME,
  entryName,
  ownerSegments,
  short,
  verifies,
} from "./common.js";
import { RollbackStoreError, type RollbackStore, type SnapshotOwner } from "./store.js";

export type S3Sse = "none" | "s3" | "kms";

export interface S3RollbackStoreOptions {
  /** `host[:port]` (or a full http(s) URL). */
  endpoint: string;
  bucket: string;
  prefix?: string;
  /** Empty: the region in an AWS host name, else us-east-1. */
  region?: string;
  /** https (default) or http. */
  useSSL?: boolean;
  accessKey?: string;
  secretKey?: string;
  sessionToken?: string;
  /** Requests are not signed (public buckets). */
  anonymous?: boolean;
  sse?: S3Sse;
  /** KMS key id or ARN for sse=kms; empty: the bucket's default KMS key. */
  sseKmsKey?: string;
  /** Digests kept per StageSet stage; default 5. */
  retain?: number;
  log?: Logger;
  /** Extra client configuration (tests: maxAttempts, requestHandler). Never credentials. */
  clientConfig?: Partial<S3ClientConfig>;
}

const AWS_HOST = /(^|\.)amazonaws\.com(\.cn)?$/;
const AWS_REGION_IN_HOST = /(?:^|\.)s3[.-](?:dualstack\.|fips\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?$/;
const DIGEST_METADATA = "stageset-digest";

export class S3RollbackStore implements RollbackStore {
  readonly kind = "s3" as const;
  readonly description: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly endpointUrl: string;
  readonly retain: number;
  private readonly client: S3Client;
  private readonly sse: S3Sse;
  private readonly sseKmsKey: string;
  private readonly secrets: string[];
  private readonly log?: Logger;

  constructor(options: S3RollbackStoreOptions) {
    if (options.endpoint.trim() === "") throw new RollbackStoreError("S3 rollback store: the endpoint is empty");
    if (options.bucket.trim() === "") throw new RollbackStoreError("S3 rollback store: the bucket is empty");
    this.bucket = options.bucket.trim();
    this.prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.retain = checkRetain(options.retain);
    this.sse = options.sse ?? "s3";
    this.sseKmsKey = options.sseKmsKey ?? "";
    this.log = options.log;
    this.endpointUrl = endpointUrl(options.endpoint.trim(), options.useSSL ?? true);
    const host = new URL(this.endpointUrl).hostname;
    this.description = `s3 bucket "${this.bucket}"${this.prefix ? ` prefix "${this.prefix}/"` : ""} at ${this.endpointUrl}`;
    this.secrets = [options.accessKey, options.secretKey, options.sessionToken].filter((s): s is string => !!s && s.length >= 4);

    const hasKeys = !!options.accessKey || !!options.secretKey;
    if (options.anonymous && (hasKeys || options.sessionToken)) {
      throw new RollbackStoreError(`${this.description}: anonymous access and static credentials are mutually exclusive`);
    }
    if (hasKeys && !(options.accessKey && options.secretKey)) {
      throw new RollbackStoreError(`${this.description}: the access key and the secret key must be set together`);
    }
    if (options.sessionToken && !hasKeys) {
      throw new RollbackStoreError(`${this.description}: a session token needs the access key and secret key it belongs to`);
    }
    if (this.sseKmsKey !== "" && this.sse !== "kms") {
      throw new RollbackStoreError(`${this.description}: a KMS key is only used with server-side encryption "kms" (it is "${this.sse}")`);
    }

    const config: S3ClientConfig = {
      ...options.clientConfig,
      endpoint: this.endpointUrl,
      region: options.region?.trim() || AWS_REGION_IN_HOST.exec(host)?.[1] || "us-east-1",
      forcePathStyle: !AWS_HOST.test(host),
      // Our own digest verifies every object; the SDK's optional CRC checksums
      // are not understood by every S3-compatible server.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    };
    if (options.anonymous) {
      config.httpAuthSchemeProvider = (() => [{ schemeId: "smithy.api#noAuth" }]) as unknown as S3ClientConfig["httpAuthSchemeProvider"];
      config.httpAuthSchemes = [
        {
          schemeId: "smithy.api#noAuth",
          identityProvider: () => async () => ({}),
          signer: { sign: async (request: unknown) => request },
        },
      ] as unknown as S3ClientConfig["httpAuthSchemes"];
    } else if (hasKeys) {
      config.credentials = {
        accessKeyId: options.accessKey!,
        secretAccessKey: options.secretKey!,
        ...(options.sessionToken ? { sessionToken: options.sessionToken } : {}),
      };
    }
    // else: the SDK's default credential chain.
    this.client = new S3Client(config);
  }

  /** Checks that the bucket exists and the credentials may use it (startup). */
  async open(): Promise<this> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const status = httpStatus(err);
      if (status === 404 || errorName(err) === "NotFound" || errorName(err) === "NoSuchBucket") {
        throw new RollbackStoreError(`${this.description}: the bucket does not exist (create it first; the controller never creates it)`, { cause: err });
      }
      if (status === 403) {
        throw new RollbackStoreError(`${this.description}: access to the bucket is denied (HeadBucket answered 403: check the credentials and the bucket policy)`, { cause: err });
      }
      throw new RollbackStoreError(`${this.description}: cannot check the bucket: ${this.cause(err)}`, { cause: err });
    }
    return this;
  }

  /** The object key of `digest` for `owner` (validated). */
  objectKey(owner: SnapshotOwner, digest: string): string {
    return `${this.ownerPrefix(owner)}${entryName(checkDigest(digest))}`;
  }

  private ownerPrefix(owner: SnapshotOwner): string {
    const path = ownerSegments(owner).join("/");
    return this.prefix ? `${this.prefix}/${path}/` : `${path}/`;
  }

  async put(owner: SnapshotOwner, digest: string, tarball: Buffer): Promise<void> {
    const parsed = checkDigest(digest);
    const ownerPrefix = this.ownerPrefix(owner);
    const name = entryName(parsed);
    const key = `${ownerPrefix}${name}`;
    const where = `${this.description}: put ${short(parsed)} for ${describeOwner(owner)}`;
    checkTarball(parsed, tarball, where);
    const md5 = createHash("md5").update(tarball);
    const md5Bytes = md5.digest();

    let listed: _Object[];
    try {
      listed = await this.list(ownerPrefix);
    } catch (err) {
      throw new RollbackStoreError(`${where}: listing the stage's objects failed: ${this.cause(err)}`, { cause: err });
    }

    const existing = listed.find((o) => o.Key === key);
    const newest = newestFirst(listed.filter((o) => o.Key !== undefined && ENTRY_NAME.test(o.Key.slice(ownerPrefix.length))))[0];
    const etag = existing?.ETag?.replace(/"/g, "").toLowerCase();
    const sameContent =
      existing !== undefined &&
      existing.Size === tarball.length &&
      (this.sse === "kms" || etag === undefined || !/^[0-9a-f]{32}$/.test(etag) || etag === md5Bytes.toString("hex"));
    if (!(sameContent && newest?.Key === key)) {
      const input: PutObjectCommandInput = {
        Bucket: this.bucket,
        Key: key,
        Body: tarball,
        ContentLength: tarball.length,
        ContentMD5: md5Bytes.toString("base64"),
        ContentType: "application/gzip",
        Metadata: { [DIGEST_METADATA]: `${parsed.algorithm}:${parsed.hex}` },
      };
      if (this.sse === "s3") input.ServerSideEncryption = "AES256";
      if (this.sse === "kms") {
        input.ServerSideEncryption = "aws:kms";
        if (this.sseKmsKey !== "") input.SSEKMSKeyId = this.sseKmsKey;
      }
      try {
        await this.client.send(new PutObjectCommand(input));
      } catch (err) {
        throw new RollbackStoreError(`${where}: ${this.cause(err)}${this.sseHint(err)}`, { cause: err });
      }
    }

    const candidates = listed
      .filter((o) => o.Key !== undefined && ENTRY_NAME.test(o.Key.slice(ownerPrefix.length)))
      .map((o) => ({ name: o.Key!.slice(ownerPrefix.length), time: o.LastModified?.getTime() ?? 0 }));
    for (const old of beyondRetention(candidates, this.retain, name)) {
      try {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: `${ownerPrefix}${old}` }));
      } catch (err) {
        // The entry is stored; retention is retried on the next put.
        this.log?.warn({ store: this.description, owner: describeOwner(owner), object: old, err: this.cause(err) }, "rollback store retention failed");
        break;
      }
    }
  }

  async get(owner: SnapshotOwner, digest: string): Promise<Buffer | undefined> {
    const parsed = checkDigest(digest);
    const key = this.objectKey(owner, digest);
    let data: Buffer;
    try {
      const answer = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!answer.Body) return undefined;
      data = Buffer.from(await answer.Body.transformToByteArray());
    } catch (err) {
      if (httpStatus(err) === 404 || errorName(err) === "NoSuchKey") return undefined;
      throw new RollbackStoreError(`${this.description}: get ${short(parsed)} for ${describeOwner(owner)}: ${this.cause(err)}`, { cause: err });
    }
    if (verifies(parsed, data)) return data;
    this.log?.warn(
      { store: this.description, owner: describeOwner(owner), digest: short(parsed) },
      "rollback store object does not match its digest; treated as missing",
    );
    return undefined;
  }

  /** Releases the client's connections. */
  destroy(): void {
    this.client.destroy();
  }

  /** Every object directly under `ownerPrefix`. */
  private async list(ownerPrefix: string): Promise<_Object[]> {
    const out: _Object[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: ownerPrefix, Delimiter: "/", ContinuationToken: token }),
      );
      out.push(...(page.Contents ?? []));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /**
   * For a refused write with server-side encryption on: says which mode was
   * asked for, since a backend that cannot honour the header answers with
   * anything from 400 (InvalidArgument, NotImplemented) to a bare 500.
   */
  private sseHint(err: unknown): string {
    if (this.sse === "none") return "";
    const status = httpStatus(err);
    if (status === undefined || status === 403 || status === 404) return "";
    const mode = this.sse === "kms" ? `"kms" (aws:kms${this.sseKmsKey ? `, key ${this.sseKmsKey}` : ", the bucket's default key"})` : `"s3" (AES256)`;
    return ` — the write asked for server-side encryption ${mode}; a backend that cannot honour it refuses the write (--rollback-store-s3-sse)`;
  }

  /** An SDK error for a message: its name, HTTP status and message, credentials scrubbed. */
  private cause(err: unknown): string {
    let text: string;
    if (err instanceof S3ServiceException) {
      const status = err.$metadata?.httpStatusCode;
      text = `${err.name}${status ? ` (HTTP ${status})` : ""}${err.message && err.message !== err.name && err.message !== "UnknownError" ? `: ${err.message}` : ""}`;
    } else if (err instanceof Error) {
      const code = (err as NodeJS.ErrnoException).code;
      text = err.name === "CredentialsProviderError"
        ? `no credentials: none were given and the default AWS chain found none (${err.message})`
        : `${code && !err.message.includes(code) ? `${code}: ` : ""}${err.message}`;
    } else {
      text = String(err);
    }
    for (const secret of this.secrets) text = text.split(secret).join("[redacted]");
    return text;
  }
}

function endpointUrl(endpoint: string, useSSL: boolean): string {
  const withScheme = /^https?:\/\//i.test(endpoint) ? endpoint : `${useSSL ? "https" : "http"}://${endpoint}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new RollbackStoreError(`S3 rollback store: endpoint "${endpoint.replace(/^.*@/, "")}" is not host:port`);
  }
  if (url.username || url.password || (url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) {
    throw new RollbackStoreError(`S3 rollback store: endpoint "${url.host}" must be host[:port] without credentials, path or query`);
  }
  return `${url.protocol}//${url.host}`;
}

function newestFirst(objects: _Object[]): _Object[] {
  return [...objects].sort(
    (a, b) => (b.LastModified?.getTime() ?? 0) - (a.LastModified?.getTime() ?? 0) || ((a.Key ?? "") < (b.Key ?? "") ? -1 : 1),
  );
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : "";
}

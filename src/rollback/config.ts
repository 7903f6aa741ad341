/**
 * The rollback store the controller's flags ask for: the filesystem store
 * for `--rollback-store-path`, the S3 store for `--rollback-store-s3-endpoint`
 * with `--rollback-store-s3-bucket`, none when both are empty. The flag parser
 * already refuses both at once (exit 2 naming both flags).
 */
import type { RollbackStoreConfig } from "../config/flags.js";
import type { Logger } from "../util/log.js";
import { FilesystemRollbackStore } from "./fs-store.js";
import { RollbackStoreError, type RollbackStore } from "./store.js";

export interface RollbackStoreFactoryOptions {
  /** Digests kept per StageSet stage (default 5). */
  retain?: number;
}

/**
 * Builds and checks the configured store: the filesystem store's directory
 * must be usable, the S3 bucket must exist and be reachable with the
 * credentials (HeadBucket). Throws RollbackStoreError with a message naming
 * the store (never credentials) when it cannot be used.
 */
export async function rollbackStoreFromConfig(
  config: RollbackStoreConfig,
  log: Logger,
  options: RollbackStoreFactoryOptions = {},
): Promise<RollbackStore | undefined> {
  const { path, s3 } = config;
  if (path !== "" && s3.endpoint !== "") {
    throw new RollbackStoreError("--rollback-store-path and --rollback-store-s3-endpoint are mutually exclusive: choose one rollback store");
  }
  if (path !== "") {
    const store = await new FilesystemRollbackStore({ root: path, retain: options.retain, log }).open();
    log.info({ rollbackStore: store.description }, "rollback store: filesystem");
    log.warn(
      { rollbackStore: store.description },
      "the filesystem rollback store writes artifacts (including Secret data) unencrypted: the volume must be encrypted at rest (an encrypted StorageClass, LUKS or cloud-disk encryption)",
    );
    return store;
  }
  if (s3.endpoint !== "" || s3.bucket !== "") {
    if (s3.endpoint === "" || s3.bucket === "") {
      throw new RollbackStoreError("--rollback-store-s3-endpoint and --rollback-store-s3-bucket must be set together");
    }
    // Imported here so the AWS SDK's S3 client is loaded only when an S3 store is configured.
    const { S3RollbackStore } = await import("./s3-store.js");
    const store = new S3RollbackStore({ ...s3, retain: options.retain, log });
    try {
      await store.open();
    } catch (err) {
      store.destroy();
      throw err;
    }
    log.info(
      { rollbackStore: store.description, sse: s3.sse, credentials: credentialSource(config) },
      "rollback store: s3",
    );
    return store;
  }
  return undefined;
}

/** Where the S3 credentials come from, for the startup log line (never the credentials). */
function credentialSource(config: RollbackStoreConfig): string {
  if (config.s3.anonymous) return "anonymous";
  if (config.s3.accessKey !== "") return config.s3.sessionToken !== "" ? "static keys with session token" : "static keys";
  return "default AWS chain";
}

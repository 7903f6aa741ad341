/**
 * The rollback store: each stage's last successfully applied artifact,
 * exactly as fetched (the tarball, digest-verified), keyed by its digest
 * (CONTRACT "Decisions": the store keeps artifacts, not plaintext). A
 * restore re-renders it with the current stage settings.
 */

/** Whose artifact an entry is: retention is bounded per StageSet and stage. */
export interface SnapshotOwner {
  namespace: string;
  stageSet: string;
  stage: string;
}

export interface RollbackStore {
  /** `filesystem` or `s3`, for messages and metrics. */
  readonly kind: "filesystem" | "s3";
  /** A short description for the startup log line and messages (path, or bucket and prefix; never credentials). */
  readonly description: string;
  /**
   * Stores `tarball` under `digest` (`<algorithm>:<hex>`) for `owner`, unless
   * an entry that verifies is already there. Atomic: a reader never sees a
   * partial entry. Throws RollbackStoreError (the rollout still succeeds; the
   * caller emits a `RollbackStoreFailed` Warning event).
   */
  put(owner: SnapshotOwner, digest: string, tarball: Buffer): Promise<void>;
  /**
   * The tarball stored under `digest`, verified against it again; undefined
   * when there is none or it fails verification (treated as missing). Throws
   * RollbackStoreError only when the store cannot be read at all.
   */
  get(owner: SnapshotOwner, digest: string): Promise<Buffer | undefined>;
}

/** A store operation failed; `message` says which store and why, never credentials. */
export class RollbackStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RollbackStoreError";
  }
}

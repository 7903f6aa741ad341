import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { displayUrl, type Artifact } from "./artifact.js";
import { ArtifactError } from "../errors.js";
import { computeDigest, parseDigest } from "./digest.js";
import { fetchArtifact, type FetchedArtifact, type FetchOptions } from "./fetch.js";
import { unpackArtifact, type UnpackedArtifact, type UnpackOptions } from "./unpack.js";

/**
 * Unpacked artifact trees kept by digest, so a reconcile of an unchanged
 * revision neither downloads nor unpacks again.
 *
 * - Concurrent acquire() calls for one digest share a single download.
 * - A tree is handed out as a lease; it is never deleted while leased.
 * - Unleased trees are evicted least-recently-used first once the total
 *   unpacked size passes maxBytes (default 512 MiB). Leased trees may push
 *   the total over the bound until released.
 * - Callers must treat the tree as read-only: it is shared.
 */
export const DEFAULT_CACHE_MAX_BYTES = 512 * 1024 * 1024;

export interface ArtifactCacheOptions {
  /** Parent directory of the cache's own fresh directory; default os.tmpdir(). */
  parentDir?: string;
  maxBytes?: number;
  fetch?: Omit<FetchOptions, "signal" | "parentDir">;
  unpack?: Omit<UnpackOptions, "parentDir">;
}

export interface ArtifactLease {
  /** Root of the unpacked artifact. Read-only. */
  dir: string;
  digest: string;
  /** Returns the tree to the cache; idempotent. */
  release(): void;
}

interface CachedTree {
  tree: UnpackedArtifact;
  leases: number;
  lastUsed: number;
}

export class ArtifactCache {
  private readonly trees = new Map<string, CachedTree>();
  private readonly loading = new Map<string, Promise<CachedTree>>();
  private root: Promise<string> | undefined;
  private clock = 0;
  private closed = false;

  constructor(private readonly options: ArtifactCacheOptions = {}) {}

  /**
   * A lease on the unpacked tree of `artifact`, downloading and unpacking it
   * unless a tree with the same digest is cached. Rejects with the fetch or
   * unpack ArtifactError; the `signal` only stops this caller's wait, a shared
   * download carries on for the others.
   */
  async acquire(artifact: Artifact, signal?: AbortSignal): Promise<ArtifactLease> {
    if (this.closed) throw new Error("ArtifactCache is closed");
    const { algorithm, hex } = parseDigest(artifact.digest);
    const digest = `${algorithm}:${hex}`;
    for (;;) {
      const cached = this.trees.get(digest);
      if (cached) return this.lease(digest, cached);
      // The loaded tree is registered before this await resumes; the loop
      // covers the rare eviction between the two.
      await this.waitFor(this.load(digest, artifact), signal);
      if (this.closed) throw new Error("ArtifactCache is closed");
    }
  }

  /**
   * A lease on the tree of `artifact` built from `tarball` (bytes held
   * elsewhere, e.g. the rollback store) instead of its URL: the bytes are
   * verified against `artifact.digest`, then unpacked with the same guards.
   * Rejects with an ArtifactError when they do not match.
   */
  async acquireFromBytes(artifact: Artifact, tarball: Buffer): Promise<ArtifactLease> {
    if (this.closed) throw new Error("ArtifactCache is closed");
    const { algorithm, hex } = parseDigest(artifact.digest);
    const digest = `${algorithm}:${hex}`;
    const cached = this.trees.get(digest);
    if (cached) return this.lease(digest, cached);
    if (computeDigest(algorithm, tarball) !== digest) {
      throw new ArtifactError(`artifact ${displayUrl(artifact.url)} (revision ${artifact.revision}): the stored copy does not match digest ${digest}`);
    }
    const parentDir = await this.rootDir();
    const file = join(parentDir, `restore-${hex.slice(0, 16)}-${process.pid}-${++this.clock}.tar.gz`);
    await writeFile(file, tarball, { mode: 0o600 });
    try {
      const label = `${displayUrl(artifact.url)} (revision ${artifact.revision}, from the rollback store)`;
      const tree = await unpackArtifact(file, { ...this.options.unpack, parentDir, label });
      const entry: CachedTree = { tree, leases: 0, lastUsed: ++this.clock };
      this.trees.set(digest, entry);
      return this.lease(digest, entry);
    } finally {
      await rm(file, { force: true });
    }
  }

  private lease(digest: string, cached: CachedTree): ArtifactLease {
    cached.leases++;
    cached.lastUsed = ++this.clock;
    this.scheduleEviction();
    let released = false;
    return {
      dir: cached.tree.dir,
      digest,
      release: () => {
        if (released) return;
        released = true;
        cached.leases--;
        this.scheduleEviction();
      },
    };
  }

  /** Bytes of unpacked content currently held. */
  get size(): number {
    let total = 0;
    for (const cached of this.trees.values()) total += cached.tree.bytes;
    return total;
  }

  /** Number of cached trees. */
  get count(): number {
    return this.trees.size;
  }

  /** Deletes every tree, leased or not, and refuses further use. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.loading.values());
    this.trees.clear();
    if (this.root) await rm(await this.root, { recursive: true, force: true });
  }

  private load(digest: string, artifact: Artifact): Promise<CachedTree> {
    let pending = this.loading.get(digest);
    if (!pending) {
      pending = this.download(artifact).finally(() => this.loading.delete(digest));
      pending.then(
        (cached) => void this.trees.set(digest, cached),
        () => undefined,
      );
      this.loading.set(digest, pending);
    }
    return pending;
  }

  private async download(artifact: Artifact): Promise<CachedTree> {
    const parentDir = await this.rootDir();
    let fetched: FetchedArtifact | undefined;
    try {
      fetched = await fetchArtifact(artifact, { ...this.options.fetch, parentDir });
      // Unpack failures name the artifact the way fetch failures do.
      const label = `${displayUrl(artifact.url)} (revision ${artifact.revision})`;
      const tree = await unpackArtifact(fetched.path, { ...this.options.unpack, parentDir, label });
      return { tree, leases: 0, lastUsed: ++this.clock };
    } finally {
      await fetched?.remove();
    }
  }

  private async waitFor<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    if (!signal) return promise;
    signal.throwIfAborted();
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  private scheduleEviction(): void {
    // A tree that cannot be deleted only wastes scratch space; it must not
    // fail the caller that happened to trigger the eviction.
    this.evict().catch(() => undefined);
  }

  private async evict(): Promise<void> {
    const maxBytes = this.options.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
    const idle = [...this.trees.entries()].filter(([, c]) => c.leases === 0).sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    let total = this.size;
    const removals: Promise<void>[] = [];
    for (const [digest, cached] of idle) {
      if (total <= maxBytes) break;
      this.trees.delete(digest);
      total -= cached.tree.bytes;
      removals.push(cached.tree.remove());
    }
    await Promise.all(removals);
  }

  private rootDir(): Promise<string> {
    this.root ??= mkdtemp(join(this.options.parentDir ?? tmpdir(), "stageset-artifacts-"));
    return this.root;
  }
}

/**
 * The filesystem rollback store (`--rollback-store-path`), for a local volume
 * or a ReadWriteMany volume that several controller replicas mount.
 *
 * Layout: one file per entry,
 *
 *     <root>/<namespace>/<stageset>/<stage>/<algorithm>-<hex>.tar.gz
 *
 * (every segment a DNS-1123 name, checked, so none can escape the root). A
 * file holds the artifact tarball exactly as fetched; its name is its digest.
 *
 * Writes are atomic: the tarball goes to a temporary file of a unique name in
 * the same directory (`.<entry>.<random>.tmp`), is fsynced, and is renamed
 * over the entry name (the directory is fsynced after). A reader therefore
 * sees either no entry or a whole one. Two replicas writing the same digest at
 * once each rename their own complete file; the last rename wins and both are
 * byte-identical. get() hashes the file again: an entry that does not verify
 * (a torn write on a filesystem without atomic rename, tampering, bit rot) is
 * treated as missing and removed.
 *
 * Retention: per StageSet stage, the newest `retain` digests (default 5) by
 * modification time; a put of a digest already present refreshes its time, so
 * the entry just stored is always the newest and never removed. Temporary
 * files older than an hour (from a writer that died) are removed on the way.
 *
 * The files are not encrypted: the volume must be (the controller logs a
 * reminder at startup).
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, mkdir, open, readdir, rename, rm, stat, unlink, utimes } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import type { Logger } from "../util/log.js";
import {
  beyondRetention,
  checkDigest,
  checkRetain,
  checkTarball,
  describeCause,
  describeOwner,
  ENTRY_NAME,
  entryName,
  ownerSegments,
  short,
  verifies,
  type RetentionCandidate,
} from "./common.js";
import { RollbackStoreError, type RollbackStore, type SnapshotOwner } from "./store.js";

/** Temporary files a dead writer left behind are removed after this long. */
const STALE_TEMP_MS = 60 * 60 * 1000;
const TEMP_NAME = /^\..+\.tmp$/;

export interface FilesystemRollbackStoreOptions {
  /** The store's root directory (created when missing). */
  root: string;
  /** Digests kept per StageSet stage; default 5. */
  retain?: number;
  log?: Logger;
}

export class FilesystemRollbackStore implements RollbackStore {
  readonly kind = "filesystem" as const;
  readonly description: string;
  readonly root: string;
  readonly retain: number;
  private readonly log?: Logger;

  constructor(options: FilesystemRollbackStoreOptions) {
    if (options.root === "") throw new RollbackStoreError("filesystem rollback store: the path is empty");
    this.root = resolve(options.root);
    if (!isAbsolute(this.root)) throw new RollbackStoreError(`filesystem rollback store: ${options.root} is not a usable path`);
    this.retain = checkRetain(options.retain);
    this.log = options.log;
    this.description = `filesystem ${this.root}`;
  }

  /** Creates the root when missing and checks that it is a writable directory (startup). */
  async open(): Promise<this> {
    try {
      await mkdir(this.root, { recursive: true });
      const info = await stat(this.root);
      if (!info.isDirectory()) throw new Error("not a directory");
      await access(this.root, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch (err) {
      throw new RollbackStoreError(`${this.description}: cannot use the directory: ${describeCause(err)}`, { cause: err });
    }
    return this;
  }

  /** The entry file of `digest` for `owner` (validated). */
  entryPath(owner: SnapshotOwner, digest: string): string {
    return join(this.ownerDir(owner), entryName(checkDigest(digest)));
  }

  private ownerDir(owner: SnapshotOwner): string {
    return join(this.root, ...ownerSegments(owner));
  }

  async put(owner: SnapshotOwner, digest: string, tarball: Buffer): Promise<void> {
    const parsed = checkDigest(digest);
    const dir = this.ownerDir(owner);
    const name = entryName(parsed);
    const path = join(dir, name);
    const where = `${this.description}: put ${short(parsed)} for ${describeOwner(owner)}`;
    checkTarball(parsed, tarball, where);

    try {
      if (await this.readVerified(path, parsed)) {
        // Already there and whole: only make it the newest for retention.
        const now = new Date();
        await utimes(path, now, now);
      } else {
        await mkdir(dir, { recursive: true });
        await writeAtomic(dir, name, tarball);
      }
    } catch (err) {
      throw new RollbackStoreError(`${where}: ${describeCause(err)}`, { cause: err });
    }

    try {
      await this.prune(dir, name);
    } catch (err) {
      // The entry is stored; a retention pass that failed is retried on the next put.
      this.log?.warn({ store: this.description, owner: describeOwner(owner), err: describeCause(err) }, "rollback store retention failed");
    }
  }

  async get(owner: SnapshotOwner, digest: string): Promise<Buffer | undefined> {
    const parsed = checkDigest(digest);
    const path = join(this.ownerDir(owner), entryName(parsed));
    try {
      return await this.readVerified(path, parsed, owner);
    } catch (err) {
      throw new RollbackStoreError(
        `${this.description}: get ${short(parsed)} for ${describeOwner(owner)}: ${describeCause(err)}`,
        { cause: err },
      );
    }
  }

  /**
   * The entry's content when it exists and verifies; undefined when it is
   * missing or does not verify (then it is removed, unless a writer has
   * replaced it in the meantime).
   */
  private async readVerified(path: string, parsed: ReturnType<typeof checkDigest>, owner?: SnapshotOwner): Promise<Buffer | undefined> {
    let handle;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      // ELOOP: a symbolic link where an entry should be is not an entry
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === "ELOOP") return undefined;
      throw err;
    }
    let data: Buffer;
    let ino: number;
    try {
      const info = await handle.stat();
      if (!info.isFile()) return undefined;
      ino = info.ino;
      data = await handle.readFile();
    } finally {
      await handle.close();
    }
    if (verifies(parsed, data)) return data;

    this.log?.warn(
      { store: this.description, ...(owner ? { owner: describeOwner(owner) } : {}), digest: short(parsed) },
      "rollback store entry does not match its digest; treated as missing and removed",
    );
    try {
      const now = await stat(path);
      // Only the file that was read: a writer may have renamed a good one over it since.
      if (now.ino === ino) await unlink(path);
    } catch {
      // gone already, or not ours to remove: it is treated as missing either way
    }
    return undefined;
  }

  /** Removes entries beyond retention (never `keep`) and stale temporary files. */
  private async prune(dir: string, keep: string): Promise<void> {
    const names = await readdir(dir);
    const entries: RetentionCandidate[] = [];
    const now = Date.now();
    for (const name of names) {
      const isEntry = ENTRY_NAME.test(name);
      const isTemp = TEMP_NAME.test(name);
      if (!isEntry && !isTemp) continue;
      let mtime: number;
      try {
        mtime = (await stat(join(dir, name))).mtimeMs;
      } catch (err) {
        if (isMissing(err)) continue;
        throw err;
      }
      if (isEntry) entries.push({ name, time: mtime });
      else if (now - mtime > STALE_TEMP_MS) await rm(join(dir, name), { force: true });
    }
    for (const name of beyondRetention(entries, this.retain, keep)) {
      await rm(join(dir, name), { force: true });
    }
  }
}

/** Writes `data` to `<dir>/<name>` through a uniquely named temporary file: write, fsync, rename, fsync the directory. */
async function writeAtomic(dir: string, name: string, data: Buffer): Promise<void> {
  const temp = join(dir, `.${name}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`);
  let renamed = false;
  try {
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, join(dir, name));
    renamed = true;
    await syncDirectory(dir);
  } finally {
    if (!renamed) await rm(temp, { force: true });
  }
}

/** fsync of a directory, so the rename is durable; not every filesystem allows it (best effort). */
async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    await handle.sync();
  } catch {
    // some network filesystems refuse fsync on a directory; the rename itself is still atomic
  } finally {
    await handle?.close();
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

import { createReadStream } from "node:fs";
import { lstat, mkdtemp, open, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { pipeline, type Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { Unpack, type ReadEntry } from "tar";
import { ArtifactError, errorMessage } from "../errors.js";
import { TarGuard } from "./tar-guard.js";

/**
 * Unpack limits. They exist so a hostile or runaway artifact cannot fill the
 * controller's scratch volume, exhaust its inodes or keep a core busy; they
 * are not quotas.
 *
 * - 1 GiB of file content: ten times Flux's own untar default (100 MiB, from
 *   fluxcd/pkg/tar), so anything kustomize-controller accepts is accepted, and
 *   large monorepo artifacts of several hundred MB still fit. The scratch
 *   volume must be sized for the artifacts in flight (and the ArtifactCache).
 * - 100,000 entries (files, directories and links together): well past any
 *   manifest tree kustomize can build in reasonable time, yet it bounds a
 *   tarball of empty files.
 * - The decompressed tar stream may be at most maxBytes plus 2 KiB per allowed
 *   entry (headers, padding, PAX records): it bounds a gzip bomb hiding in
 *   metadata.
 * - At most MAX_TRAILING_BYTES after the end-of-archive marker (the two zero
 *   blocks): GNU tar and Python pad an archive to a 10 KiB record, Go's
 *   archive/tar (Flux) writes none. Anything longer is refused as soon as it
 *   is seen; it is never buffered.
 */
export const DEFAULT_MAX_UNPACKED_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_MAX_ENTRIES = 100_000;
const STREAM_OVERHEAD_PER_ENTRY = 2048;
/** One tar record (20 blocks), the padding tar writers add after the end-of-archive marker. */
export const MAX_TRAILING_BYTES = 10 * 1024;
/**
 * The decompressed stream is handed to the tar parser in slices of this size,
 * waiting for the parser after each, so the parser never holds more than one
 * slice past the end-of-archive marker. The marker's position is therefore
 * known to within one slice: at most MAX_TRAILING_BYTES + SLICE_BYTES bytes
 * after it are ever read.
 */
const SLICE_BYTES = 4096;
const BLOCK = 512;
/** Symlinks checked with realpath at once. */
const REALPATH_CONCURRENCY = 16;

export interface UnpackOptions {
  maxBytes?: number;
  maxEntries?: number;
  /** Parent of the fresh directory the tarball is unpacked into; default os.tmpdir(). */
  parentDir?: string;
  /** How messages name the artifact, e.g. its URL and revision; default "artifact". */
  label?: string;
}

export interface UnpackedArtifact {
  dir: string;
  /** Sum of regular-file sizes. */
  bytes: number;
  entries: number;
  /** Deletes `dir`. */
  remove(): Promise<void>;
}

type Compression = "gzip" | "none";

interface Limits {
  maxBytes: number;
  maxEntries: number;
}

/**
 * Unpacks a .tar.gz or plain .tar (told apart by magic bytes) into a fresh
 * directory, reading the tarball once. Every entry is checked by the
 * TarGuard before it is written; once all are written, every symlink is
 * judged against the final tree (TarGuard.finish, then realpath on disk), and
 * the artifact is refused if one resolves outside it. A refused tarball
 * leaves nothing behind. An archive with no entries (only the end-of-archive
 * marker, or a gzip stream of nothing) is an empty artifact.
 */
export async function unpackArtifact(tarball: string, options: UnpackOptions = {}): Promise<UnpackedArtifact> {
  const limits = {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_UNPACKED_BYTES,
    maxEntries: options.maxEntries ?? DEFAULT_MAX_ENTRIES,
  };
  try {
    const compression = await detectCompression(tarball);
    const dir = await mkdtemp(join(options.parentDir ?? tmpdir(), "unpacked-"));
    // node-tar may still be finishing a file write when a failed unpack
    // settles; retry the removal rather than leave a partial tree behind.
    const remove = () => rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
    try {
      const guard = await extract(tarball, compression, limits, dir);
      guard.finish();
      await assertLinksInside(dir, guard.symlinkPaths);
      return { dir, bytes: guard.totalBytes, entries: guard.totalEntries, remove };
    } catch (err) {
      await remove();
      throw err;
    }
  } catch (err) {
    throw options.label && err instanceof ArtifactError ? relabel(err, options.label) : err;
  }
}

function relabel(err: ArtifactError, label: string): ArtifactError {
  const message = err.message.startsWith("artifact ") ? `artifact ${label} ${err.message.slice("artifact ".length)}` : `artifact ${label}: ${err.message}`;
  return new ArtifactError(message, { cause: err.cause, terminal: err.terminal });
}

/** One pass: decompress, check each entry with a TarGuard and write it under `dir`. */
async function extract(tarball: string, compression: Compression, limits: Limits, dir: string): Promise<TarGuard> {
  const guard = new TarGuard(limits);
  let refusal: ArtifactError | undefined;
  let failure: unknown;
  const fail = (err: unknown) => {
    failure ??= err;
    wake();
  };
  let wake: () => void = () => undefined;

  const filter = (_path: string, entry: ReadEntry | unknown): boolean => {
    if (refusal) return false;
    const readEntry = entry as ReadEntry;
    try {
      guard.check({ path: readEntry.path, type: readEntry.type, linkpath: readEntry.linkpath, size: readEntry.size });
    } catch (err) {
      refusal = err instanceof ArtifactError ? err : new ArtifactError(errorMessage(err), { cause: err, terminal: true });
      parser.abort(new Error(refusal.message));
      fail(refusal);
      return false;
    }
    // Read and delete access for us, no setuid/setgid/sticky or group/world write.
    readEntry.mode = readEntry.type === "Directory" ? 0o755 : 0o644 | ((readEntry.mode ?? 0) & 0o111);
    return true;
  };
  // The stream handed over is already decompressed; the parser must not
  // sniff (and decompress) a second layer.
  const parser = new Unpack({ cwd: dir, strict: true, preserveOwner: false, noMtime: true, filter, brotli: false, zstd: false });
  let endOfArchive = false;
  let done = false;
  parser.on("eof", () => {
    endOfArchive = true;
    wake();
  });
  let drained = false;
  parser.on("drain", () => {
    drained = true;
    wake();
  });
  parser.on("error", fail);
  parser.on("abort", fail);
  parser.on("end", () => {
    done = true;
    wake();
  });
  // node-tar drops entries of types it does not know (sparse files, ACLs,
  // oversized PAX records) before our filter sees them: refuse those too.
  parser.on("ignoredEntry", (entry: ReadEntry) => {
    if (refusal) return;
    refusal = new ArtifactError(`artifact refused: the tarball entry ${JSON.stringify(entry.path)} has unsupported type ${entry.type}`, { terminal: true });
    parser.abort(new Error(refusal.message));
    fail(refusal);
  });
  const next = () => new Promise<void>((resolve) => (wake = resolve));

  const maxStream = limits.maxBytes + limits.maxEntries * STREAM_OVERHEAD_PER_ENTRY;
  const source = createReadStream(tarball);
  const input: Readable =
    compression === "gzip"
      ? pipeline(source, createGunzip(), () => undefined)
      : source;
  let seen = 0;
  let trailing = 0;
  let first: Buffer | undefined = Buffer.alloc(0);
  let emptyArchive = false;
  const check = () => {
    if (refusal) throw refusal;
    if (failure) throw unpackFailure(failure);
  };
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      check();
      seen += chunk.length;
      if (seen > maxStream) throw new ArtifactError(`artifact refused: the decompressed tarball exceeds ${maxStream} bytes`, { terminal: true });
      let data = chunk;
      if (first !== undefined) {
        // Hold the first block back to tell an empty archive and a body that
        // is not a tar at all from a tarball.
        first = Buffer.concat([first, data]);
        if (first.length < BLOCK) continue;
        data = first;
        first = undefined;
        const kind = firstBlockKind(data.subarray(0, BLOCK));
        if (kind === "not-tar") throw notATar(compression);
        if (kind === "zero") emptyArchive = true;
      }
      if (emptyArchive || endOfArchive) {
        trailing += data.length;
      } else {
        for (let offset = 0; offset < data.length; offset += SLICE_BYTES) {
          if (endOfArchive) {
            trailing += data.length - offset;
            break;
          }
          drained = false;
          const writable = parser.write(data.subarray(offset, offset + SLICE_BYTES));
          check();
          // Backpressure: the parser takes the next slice only once it has
          // worked through this one (and has then emitted "eof" if the
          // marker was in it).
          while (!writable && !drained && !endOfArchive && !done && !failure) await next();
          check();
        }
      }
      if (trailing > MAX_TRAILING_BYTES) {
        throw new ArtifactError(
          `artifact refused: the tarball has more than ${MAX_TRAILING_BYTES} bytes after its end-of-archive marker`,
          { terminal: true },
        );
      }
    }
    if (first !== undefined) {
      // Less than one block in all: nothing, or zeros, is an empty archive.
      if (first.some((byte) => byte !== 0)) throw notATar(compression);
      emptyArchive = true;
    }
    // An empty archive: the parser never sees a byte (node-tar would call it unrecognized).
    if (emptyArchive) return guard;
    parser.end();
    while (!done && !failure) await next();
    check();
    return guard;
  } catch (err) {
    if (!refusal && !failure) parser.abort(new Error("unpack stopped"));
    input.destroy();
    // node-tar refuses some links on its own (a link whose target passes
    // through another link); say what is wrong with the links if the guard
    // can tell from the entries seen so far.
    if (!refusal) guard.finish();
    if (err instanceof ArtifactError) throw err;
    throw unpackFailure(err);
  } finally {
    source.destroy();
  }
}

function unpackFailure(err: unknown): ArtifactError {
  if (err instanceof ArtifactError) return err;
  const code = (err as { code?: unknown })?.code;
  if (code === "Z_DATA_ERROR" || code === "Z_BUF_ERROR") {
    return new ArtifactError(`artifact could not be unpacked: the gzip stream is corrupt or truncated (${describeError(err)})`, { cause: err, terminal: true });
  }
  return new ArtifactError(`artifact could not be unpacked: ${describeError(err)}`, { cause: err, terminal: true });
}

function notATar(compression: Compression): ArtifactError {
  return new ArtifactError(
    compression === "gzip"
      ? "artifact refused: the artifact is gzip-compressed but what it contains is not a tar archive"
      : "artifact refused: the artifact file is not a tar archive",
    { terminal: true },
  );
}

/** A tar header (valid checksum), a zero block (the end-of-archive marker), or neither. */
function firstBlockKind(block: Buffer): "header" | "zero" | "not-tar" {
  if (block.every((byte) => byte === 0)) return "zero";
  const field = block.toString("latin1", 148, 156).replace(/[\0 ]+$/, "").replace(/^[ ]+/, "");
  if (!/^[0-7]+$/.test(field)) return "not-tar";
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === Number.parseInt(field, 8) ? "header" : "not-tar";
}

/**
 * The on-disk judgement of the final tree: every symlink is resolved with
 * realpath and must stay inside `dir`. A dangling link (ENOENT) resolves to
 * nothing and is left alone: TarGuard.finish already judged its path; a loop
 * (ELOOP) is refused.
 */
async function assertLinksInside(dir: string, links: readonly string[]): Promise<void> {
  if (links.length === 0) return;
  const root = await realpath(dir);
  const inside = (path: string) => path === root || path.startsWith(root + sep);
  let index = 0;
  const worker = async () => {
    while (index < links.length) {
      const link = links[index++]!;
      const path = join(dir, link);
      let resolved: string;
      try {
        resolved = await realpath(path);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === "ENOENT" || code === "ENOTDIR") continue;
        if (code === "ELOOP") throw new ArtifactError(`artifact refused: the tarball symlink ${JSON.stringify(link)} is part of a symlink loop`, { terminal: true });
        throw err;
      }
      if (!inside(resolved)) {
        throw new ArtifactError(`artifact refused: the tarball symlink ${JSON.stringify(link)} points outside the artifact`, { terminal: true });
      }
      // The link itself must still be a link inside the tree (not replaced by anything on the way).
      await lstat(path);
    }
  };
  await Promise.all(Array.from({ length: Math.min(REALPATH_CONCURRENCY, links.length) }, worker));
}

async function detectCompression(tarball: string): Promise<Compression> {
  const header = Buffer.alloc(512);
  const handle = await open(tarball, "r");
  let length: number;
  try {
    ({ bytesRead: length } = await handle.read(header, 0, header.length, 0));
  } finally {
    await handle.close();
  }
  if (length >= 2 && header[0] === 0x1f && header[1] === 0x8b) return "gzip";
  if (length === 512 && (header.toString("latin1", 257, 262) === "ustar" || header.every((byte) => byte === 0))) return "none";
  throw new ArtifactError(
    length === 0
      ? "artifact refused: the artifact file is empty"
      : "artifact refused: the artifact file is neither a gzip-compressed tarball nor a tar archive",
    { terminal: true },
  );
}

function describeError(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  const message = errorMessage(err);
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}

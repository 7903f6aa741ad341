import { createReadStream } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { Parser, Unpack, type ReadEntry } from "tar";
import { ArtifactError, errorMessage } from "../errors.js";
import { TarGuard } from "./tar-guard.js";

/**
 * Unpack limits. They exist so a hostile or runaway artifact cannot fill the
 * controller's scratch volume or exhaust its inodes; they are not quotas.
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
 *   metadata or after the end-of-archive marker.
 */
export const DEFAULT_MAX_UNPACKED_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_MAX_ENTRIES = 100_000;
const STREAM_OVERHEAD_PER_ENTRY = 2048;

export interface UnpackOptions {
  maxBytes?: number;
  maxEntries?: number;
  /** Parent of the fresh directory the tarball is unpacked into; default os.tmpdir(). */
  parentDir?: string;
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
 * directory. The tarball is read twice: a first pass checks every entry
 * against the TarGuard rules and writes nothing, so a refused tarball is
 * refused as a whole before a single file exists; the second pass extracts.
 * Decompressing twice costs far less than a download, and the ArtifactCache
 * makes it once per digest.
 */
export async function unpackArtifact(tarball: string, options: UnpackOptions = {}): Promise<UnpackedArtifact> {
  const limits = {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_UNPACKED_BYTES,
    maxEntries: options.maxEntries ?? DEFAULT_MAX_ENTRIES,
  };
  const compression = await detectCompression(tarball);
  await readTar(tarball, compression, limits, undefined);
  const dir = await mkdtemp(join(options.parentDir ?? tmpdir(), "unpacked-"));
  // node-tar may still be finishing a file write when a failed pipeline
  // settles; retry the removal rather than leave a partial tree behind.
  const remove = () => rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
  try {
    const guard = await readTar(tarball, compression, limits, dir);
    return { dir, bytes: guard.totalBytes, entries: guard.totalEntries, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}

/**
 * One pass over the tarball, each entry checked by a fresh TarGuard. With
 * `dir` the entries are extracted there, without it only parsed.
 */
async function readTar(tarball: string, compression: Compression, limits: Limits, dir: string | undefined): Promise<TarGuard> {
  const guard = new TarGuard(limits);
  let refusal: ArtifactError | undefined;
  const refuse = (err: unknown) => {
    refusal ??= err instanceof ArtifactError ? err : new ArtifactError(errorMessage(err), { cause: err, terminal: true });
    parser.abort(new Error(refusal.message));
  };
  const filter = (_path: string, entry: ReadEntry | unknown): boolean => {
    if (refusal) return false;
    const readEntry = entry as ReadEntry;
    try {
      guard.check({ path: readEntry.path, type: readEntry.type, linkpath: readEntry.linkpath, size: readEntry.size });
    } catch (err) {
      refuse(err);
      return false;
    }
    // Read and delete access for us, no setuid/setgid/sticky or group/world write.
    readEntry.mode = readEntry.type === "Directory" ? 0o755 : 0o644 | ((readEntry.mode ?? 0) & 0o111);
    return true;
  };
  const parser: Parser = dir
    ? new Unpack({ cwd: dir, strict: true, preserveOwner: false, noMtime: true, filter })
    : new Parser({ strict: true, filter, onReadEntry: (entry) => entry.resume() });
  // node-tar drops entries of types it does not know (sparse files, ACLs,
  // oversized PAX records) before our filter sees them: refuse those too.
  parser.on("ignoredEntry", (entry: ReadEntry) => {
    if (!refusal) {
      refuse(new ArtifactError(`artifact refused: the tarball entry ${JSON.stringify(entry.path)} has unsupported type ${entry.type}`, { terminal: true }));
    }
  });

  const source = createReadStream(tarball);
  const limit = new ByteLimit(limits.maxBytes + limits.maxEntries * STREAM_OVERHEAD_PER_ENTRY);
  try {
    if (compression === "gzip") await pipeline(source, createGunzip(), limit, parser);
    else await pipeline(source, limit, parser);
  } catch (err) {
    if (refusal) throw refusal;
    if (err instanceof ArtifactError) throw err;
    throw new ArtifactError(`artifact could not be unpacked: ${describeError(err)}`, { cause: err, terminal: true });
  }
  if (refusal) throw refusal;
  return guard;
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
  if (length === 512 && header.toString("latin1", 257, 262) === "ustar") return "none";
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

/** Fails the stream once more than `limit` bytes have passed. */
class ByteLimit extends Transform {
  private seen = 0;

  constructor(private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      callback(
        new ArtifactError(`artifact refused: the decompressed tarball exceeds ${this.limit} bytes`, { terminal: true }),
      );
      return;
    }
    callback(null, chunk);
  }
}

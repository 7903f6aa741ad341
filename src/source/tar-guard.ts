import { ArtifactError } from "../errors.js";

/**
 * The safety rules for unpacking an artifact, applied to each tar entry
 * header before anything is written. Pure: it sees only paths, types, link
 * targets and sizes, in archive order. A violation refuses the whole tarball
 * (ArtifactError naming the entry); nothing is skipped silently.
 *
 * Links are judged against the archive's own tree: a symlink target is
 * resolved through the symlinks declared before it, so a chain such as
 * `a -> .` then `b -> a/..` is caught. To keep that judgement sound, a
 * symlink may not replace an earlier entry, be replaced later, or have
 * entries written through it.
 */

export interface TarEntryHeader {
  path: string;
  /** node-tar's type name: File, Directory, SymbolicLink, Link, CharacterDevice, … */
  type: string;
  linkpath?: string;
  size?: number;
}

export interface TarLimits {
  /** Sum of regular-file sizes. */
  maxBytes: number;
  /** Entries of any type. */
  maxEntries: number;
}

const FILE_TYPES = new Set(["File", "OldFile", "ContiguousFile"]);
const DEVICE_TYPES = new Set(["CharacterDevice", "BlockDevice", "FIFO"]);
const MAX_SYMLINK_HOPS = 40;

export class TarGuard {
  private entries = 0;
  private bytes = 0;
  /** Every path written so far, and every directory implied by one. */
  private readonly seen = new Set<string>();
  private readonly regularFiles = new Set<string>();
  /** Symlink path -> target, as declared in the archive. */
  private readonly symlinks = new Map<string, string>();

  constructor(private readonly limits: TarLimits) {}

  get totalBytes(): number {
    return this.bytes;
  }

  get totalEntries(): number {
    return this.entries;
  }

  /** Throws ArtifactError if the entry must not be unpacked; otherwise records it. */
  check(entry: TarEntryHeader): void {
    const name = JSON.stringify(entry.path);
    this.entries++;
    if (this.entries > this.limits.maxEntries) {
      throw refuse(`has more than ${this.limits.maxEntries} entries (limit reached at ${name})`);
    }
    if (DEVICE_TYPES.has(entry.type)) throw refuse(`entry ${name} is a ${entry.type}; device and FIFO entries are not allowed`);
    const isFile = FILE_TYPES.has(entry.type);
    if (!isFile && !["Directory", "SymbolicLink", "Link"].includes(entry.type)) {
      throw refuse(`entry ${name} has unsupported type ${entry.type}`);
    }

    const parts = safeParts(entry.path, name, "path");
    const path = parts.join("/");
    if (path === "" && entry.type !== "Directory") throw refuse(`entry ${name} names the archive root but is a ${entry.type}`);
    this.refuseThroughSymlink(parts, name);
    if (this.symlinks.has(path)) throw refuse(`entry ${name} replaces the symlink declared earlier at that path`);

    if (isFile) {
      this.bytes += Math.max(0, entry.size ?? 0);
      if (this.bytes > this.limits.maxBytes) {
        throw refuse(`unpacks to more than ${this.limits.maxBytes} bytes (limit reached at ${name})`);
      }
      this.regularFiles.add(path);
    } else if (entry.type === "SymbolicLink") {
      this.checkSymlink(parts, entry.linkpath ?? "", name);
    } else if (entry.type === "Link") {
      this.checkHardlink(entry.linkpath ?? "", name);
      this.regularFiles.add(path);
    } else {
      this.regularFiles.delete(path);
    }
    this.markSeen(parts);
  }

  private refuseThroughSymlink(parts: string[], name: string): void {
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join("/");
      if (this.symlinks.has(ancestor)) throw refuse(`entry ${name} is written through the symlink ${JSON.stringify(ancestor)}`);
    }
  }

  private checkSymlink(parts: string[], target: string, name: string): void {
    const path = parts.join("/");
    if (this.seen.has(path)) throw refuse(`symlink ${name} replaces an earlier entry at that path`);
    if (target === "") throw refuse(`symlink ${name} has an empty target`);
    if (isAbsolute(target)) throw refuse(`symlink ${name} points to the absolute path ${JSON.stringify(target)}`);
    const resolved = this.resolve(parts.slice(0, -1), target.split("/"));
    if (resolved === undefined) {
      throw refuse(`symlink ${name} -> ${JSON.stringify(target)} points outside the artifact`);
    }
    this.symlinks.set(path, target);
  }

  private checkHardlink(target: string, name: string): void {
    // node-tar resolves hardlink targets from the extraction root.
    const targetParts = safeParts(target, `${name} (hardlink target ${JSON.stringify(target)})`, "link target");
    // Only a regular file entry qualifies: never a directory, a symlink or
    // anything outside the archive (entries through symlinks are refused).
    if (!this.regularFiles.has(targetParts.join("/"))) {
      throw refuse(`hardlink ${name} -> ${JSON.stringify(target)} does not point to a regular file earlier in the artifact`);
    }
  }

  /** Resolves `target` from directory `base` within the archive tree; undefined if it leaves the tree. */
  private resolve(base: string[], target: string[]): string[] | undefined {
    const stack = [...base];
    const pending = [...target];
    let hops = 0;
    while (pending.length > 0) {
      const segment = pending.shift()!;
      if (segment === "" || segment === ".") continue;
      if (segment === "..") {
        if (stack.length === 0) return undefined;
        stack.pop();
        continue;
      }
      stack.push(segment);
      const link = this.symlinks.get(stack.join("/"));
      if (link !== undefined) {
        if (++hops > MAX_SYMLINK_HOPS) return undefined;
        stack.pop();
        pending.unshift(...link.split("/"));
      }
    }
    return stack;
  }

  private markSeen(parts: string[]): void {
    for (let i = 1; i <= parts.length; i++) this.seen.add(parts.slice(0, i).join("/"));
  }
}

/** Path segments without "" and "."; refuses absolute paths and "..". */
function safeParts(path: string, name: string, what: string): string[] {
  if (isAbsolute(path)) throw refuse(`entry ${name} has an absolute ${what}`);
  const parts = path.split("/").filter((segment) => segment !== "" && segment !== ".");
  if (parts.includes("..")) throw refuse(`entry ${name} has a ${what} containing ".."`);
  return parts;
}

function isAbsolute(path: string): boolean {
  return path.startsWith("/") || path.startsWith("\\") || /^[a-zA-Z]:[\\/]/.test(path);
}

function refuse(reason: string): ArtifactError {
  return new ArtifactError(`artifact refused: the tarball ${reason}`, { terminal: true });
}

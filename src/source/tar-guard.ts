import { ArtifactError } from "../errors.js";

/**
 * The safety rules for unpacking an artifact. Pure: it sees only paths,
 * types, link targets and sizes. A violation refuses the whole tarball
 * (ArtifactError naming the entry); nothing is skipped silently.
 *
 * Two stages:
 * - `check` runs on each entry header, in archive order, before the entry is
 *   written: types, paths, sizes and counts, hardlinks, and the rules that
 *   keep the tree simple (no entry written through a symlink, no symlink
 *   replacing or replaced by another entry, no absolute symlink target, no
 *   target that climbs out of the artifact by its own `..`).
 * - `finish` runs once every entry is known and judges every symlink against
 *   the FINAL tree: each target is resolved through every link of the
 *   archive, whatever the order they were declared in (`p -> q/..` followed
 *   by `q -> .` escapes, although neither does on its own when checked in
 *   archive order). Each link is resolved once (memoized), so the cost is
 *   linear in the total length of the link targets.
 *
 * The unpacker additionally checks every symlink of the written tree with
 * realpath (see unpack.ts); this class is the deterministic, explainable
 * judgement, the disk check the independent one.
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
/** Like the kernel's limit on links followed while resolving one path (ELOOP). */
export const MAX_SYMLINK_HOPS = 40;
/** Linux's PATH_MAX: no longer path or link target can be created or followed anyway. */
export const MAX_PATH_BYTES = 4096;

type NodeKind = "dir" | "file" | "link";

interface TreeNode {
  name: string;
  parent: TreeNode | undefined;
  kind: NodeKind;
  children: Map<string, TreeNode>;
  /** For links: the target as declared. */
  target?: string;
  /** For links, once resolved in `finish`. */
  resolution?: Resolution | "pending";
}

/** Where a path ends up: a node of the tree, possibly followed by `virtual` names that do not exist in it. */
interface Location {
  node: TreeNode;
  virtual: number;
  /** Symlinks followed, nested. */
  hops: number;
}
type Resolution = Location | { outside: true } | { loop: true };

export class TarGuard {
  private entries = 0;
  private bytes = 0;
  private readonly root: TreeNode = { name: "", parent: undefined, kind: "dir", children: new Map() };
  /** Every symlink, in archive order. */
  private readonly links: TreeNode[] = [];

  constructor(private readonly limits: TarLimits) {}

  get totalBytes(): number {
    return this.bytes;
  }

  get totalEntries(): number {
    return this.entries;
  }

  /** Paths (relative to the artifact root) of every symlink, in archive order. */
  get symlinkPaths(): string[] {
    return this.links.map(pathOf);
  }

  /** Throws ArtifactError if the entry must not be unpacked; otherwise records it. */
  check(entry: TarEntryHeader): void {
    const name = quote(entry.path);
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
    if (parts.length === 0 && entry.type !== "Directory") throw refuse(`entry ${name} names the archive root but is a ${entry.type}`);
    if (parts.length === 0) return;
    const parent = this.parentFor(parts, name);
    const leaf = parts[parts.length - 1]!;
    const existing = parent.children.get(leaf);
    if (existing?.kind === "link") throw refuse(`entry ${name} replaces the symlink declared earlier at that path`);

    if (isFile) {
      this.bytes += Math.max(0, entry.size ?? 0);
      if (this.bytes > this.limits.maxBytes) {
        throw refuse(`unpacks to more than ${this.limits.maxBytes} bytes (limit reached at ${name})`);
      }
      this.place(parent, leaf, existing, "file");
    } else if (entry.type === "SymbolicLink") {
      if (existing) throw refuse(`symlink ${name} replaces an earlier entry at that path`);
      const target = entry.linkpath ?? "";
      checkSymlinkTarget(parts, target, name);
      const node = this.place(parent, leaf, undefined, "link");
      node.target = target;
      this.links.push(node);
    } else if (entry.type === "Link") {
      this.checkHardlink(entry.linkpath ?? "", name);
      this.place(parent, leaf, existing, "file");
    } else {
      this.place(parent, leaf, existing, "dir");
    }
  }

  /**
   * Judges every symlink against the final tree: throws ArtifactError if one
   * resolves outside the artifact, loops, or chains through more than
   * MAX_SYMLINK_HOPS links. Call once all entries were checked.
   */
  finish(): void {
    for (const link of this.links) {
      const resolution = this.resolveLink(link, 0);
      const shown = `symlink ${quote(pathOf(link))} -> ${quote(link.target ?? "")}`;
      if ("outside" in resolution) throw refuse(`${shown} points outside the artifact (resolved through the other links of the archive)`);
      if ("loop" in resolution) throw refuse(`${shown} is part of a symlink loop or a chain of more than ${MAX_SYMLINK_HOPS} links`);
    }
  }

  /** The directory node that will hold the entry; refuses entries written through a symlink. */
  private parentFor(parts: string[], name: string): TreeNode {
    let node = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const segment = parts[i]!;
      let child = node.children.get(segment);
      if (child?.kind === "link") {
        throw refuse(`entry ${name} is written through the symlink ${quote(parts.slice(0, i + 1).join("/"))}`);
      }
      if (!child) {
        child = { name: segment, parent: node, kind: "dir", children: new Map() };
        node.children.set(segment, child);
      }
      node = child;
    }
    return node;
  }

  private place(parent: TreeNode, leaf: string, existing: TreeNode | undefined, kind: NodeKind): TreeNode {
    if (existing) {
      existing.kind = kind;
      return existing;
    }
    const node: TreeNode = { name: leaf, parent, kind, children: new Map() };
    parent.children.set(leaf, node);
    return node;
  }

  private checkHardlink(target: string, name: string): void {
    // node-tar resolves hardlink targets from the extraction root.
    const targetParts = safeParts(target, `${name} (hardlink target ${quote(target)})`, "link target");
    // Only a regular file entry qualifies: never a directory, a symlink or
    // anything outside the archive (entries through symlinks are refused).
    let node: TreeNode | undefined = this.root;
    for (const segment of targetParts) node = node?.kind === "dir" ? node.children.get(segment) : undefined;
    if (targetParts.length === 0 || node?.kind !== "file") {
      throw refuse(`hardlink ${name} -> ${quote(target)} does not point to a regular file earlier in the artifact`);
    }
  }

  private resolveLink(link: TreeNode, depth: number): Resolution {
    if (link.resolution === "pending") return { loop: true };
    if (link.resolution) return link.resolution;
    if (depth >= MAX_SYMLINK_HOPS) return { loop: true };
    link.resolution = "pending";
    const resolution = this.walk(link.parent!, (link.target ?? "").split("/"), depth + 1);
    link.resolution = "node" in resolution && resolution.hops > MAX_SYMLINK_HOPS ? { loop: true } : resolution;
    return link.resolution;
  }

  /** Follows `segments` from directory `start` through the final tree, symlinks included. */
  private walk(start: TreeNode, segments: string[], depth: number): Resolution {
    let node = start;
    let virtual = 0;
    let hops = 0;
    for (const segment of segments) {
      if (segment === "" || segment === ".") continue;
      if (segment === "..") {
        if (virtual > 0) virtual--;
        else if (node.parent === undefined) return { outside: true };
        else node = node.parent;
        continue;
      }
      if (virtual > 0) {
        virtual++;
        continue;
      }
      const child = node.children.get(segment);
      if (!child) {
        // A name the tree does not have: the path dangles from here; its
        // `..` are still judged (lexically), so it can never climb out.
        virtual = 1;
        continue;
      }
      if (child.kind !== "link") {
        node = child;
        continue;
      }
      const resolved = this.resolveLink(child, depth);
      if (!("node" in resolved)) return resolved;
      hops = Math.max(hops, resolved.hops + 1);
      node = resolved.node;
      virtual = resolved.virtual;
    }
    return { node, virtual, hops };
  }
}

/** Archive-order checks of a symlink target that need no other entry. */
function checkSymlinkTarget(parts: string[], target: string, name: string): void {
  if (target === "") throw refuse(`symlink ${name} has an empty target`);
  if (isAbsolute(target)) throw refuse(`symlink ${name} points to the absolute path ${quote(target)}`);
  if (Buffer.byteLength(target) > MAX_PATH_BYTES) throw refuse(`symlink ${name} has a target longer than ${MAX_PATH_BYTES} bytes`);
  // The link's own directory holds no symlink (nothing is written through
  // one), so the `..` a target starts with climb real directories: past the
  // root is an escape whatever the other links are. What follows a name is
  // judged in `finish`, when every link is known.
  let depth = parts.length - 1;
  for (const segment of target.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment !== "..") break;
    if (--depth < 0) throw refuse(`symlink ${name} -> ${quote(target)} points outside the artifact`);
  }
}

function pathOf(node: TreeNode): string {
  const names: string[] = [];
  for (let n: TreeNode | undefined = node; n?.parent !== undefined; n = n.parent) names.push(n.name);
  return names.reverse().join("/");
}

/** Path segments without "" and "."; refuses absolute paths, "..", and paths longer than PATH_MAX. */
function safeParts(path: string, name: string, what: string): string[] {
  if (isAbsolute(path)) throw refuse(`entry ${name} has an absolute ${what}`);
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw refuse(`entry ${name.slice(0, 200)}… has a ${what} longer than ${MAX_PATH_BYTES} bytes`);
  const parts = path.split("/").filter((segment) => segment !== "" && segment !== ".");
  if (parts.includes("..")) throw refuse(`entry ${name} has a ${what} containing ".."`);
  return parts;
}

function quote(path: string): string {
  const text = JSON.stringify(path);
  return text.length > 300 ? `${text.slice(0, 300)}…"` : text;
}

function isAbsolute(path: string): boolean {
  return path.startsWith("/") || path.startsWith("\\") || /^[a-zA-Z]:[\\/]/.test(path);
}

function refuse(reason: string): ArtifactError {
  return new ArtifactError(`artifact refused: the tarball ${reason}`, { terminal: true });
}

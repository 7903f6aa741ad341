import { mkdir, mkdtemp, readdir, realpath, rm, stat, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix, sep } from "node:path";
import { BuildError } from "../errors.js";
import { isKustomizationFileName } from "./kustomization.js";

/**
 * The stage's `path` as a root-relative POSIX path ("" for the root). A
 * leading `/` means the artifact root, as in Flux; climbing out with `..` is
 * refused.
 */
export function normalizeStagePath(path: string | undefined, stageIndex: number): string {
  const field = `spec.stages[${stageIndex}].path`;
  const trimmed = (path ?? "").replace(/^\/+/, "");
  const normalized = posix.normalize(trimmed === "" ? "." : trimmed).replace(/\/+$/, "");
  if (normalized === ".." || normalized.startsWith("../")) {
    throw new BuildError(`${field}: "${path}" points outside the artifact; use a path inside it such as ./apps`, { terminal: true });
  }
  return normalized === "." ? "" : normalized;
}

/** Resolves the stage directory and checks it exists, is a directory, and (after symlinks) stays in the root. */
export async function resolveStageDirectory(root: string, relative: string, stageIndex: number, rawPath: string | undefined): Promise<string> {
  const field = `spec.stages[${stageIndex}].path`;
  const shown = rawPath ?? "./";
  const realRoot = await realpath(root);
  let realDir: string;
  try {
    realDir = await realpath(join(realRoot, relative));
  } catch {
    throw new BuildError(`${field}: directory "${shown}" does not exist in the artifact`);
  }
  if (realDir !== realRoot && !realDir.startsWith(realRoot + sep)) {
    throw new BuildError(`${field}: "${shown}" resolves outside the artifact through a symbolic link`, { terminal: true });
  }
  if (!(await stat(realDir)).isDirectory()) {
    throw new BuildError(`${field}: "${shown}" is a file, not a directory; point it at the directory to build`);
  }
  return realDir;
}

/**
 * A private, writable view of an artifact for one build. The directories from
 * the root down to the stage directory are real; everything else is a
 * symbolic link into the (read-only, possibly shared) artifact, so nothing is
 * copied and the artifact is never modified. The stage directory's own
 * kustomization file is left out for the caller to write.
 */
export interface Workspace {
  /** The workspace root, mirroring the artifact root. */
  root: string;
  /** The stage directory inside the workspace. */
  stageDir: string;
  dispose(): Promise<void>;
}

export async function createWorkspace(artifactRoot: string, stageRelative: string, baseDir: string = tmpdir()): Promise<Workspace> {
  const source = await realpath(artifactRoot);
  const root = await mkdtemp(join(baseDir, "stageset-build-"));
  const dispose = () => rm(root, { recursive: true, force: true });
  try {
    const segments = stageRelative === "" ? [] : stageRelative.split("/");
    for (let depth = 0; depth <= segments.length; depth++) {
      const relative = segments.slice(0, depth).join("/");
      const next = segments[depth];
      const isStageDir = depth === segments.length;
      await mkdir(join(root, relative), { recursive: true });
      for (const entry of await readdir(join(source, relative))) {
        if (entry === next) continue;
        if (isStageDir && isKustomizationFileName(entry)) continue;
        await symlink(join(source, relative, entry), join(root, relative, entry));
      }
    }
    return { root, stageDir: join(root, stageRelative), dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

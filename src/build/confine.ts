import { readFile, realpath } from "node:fs/promises";
import { relative, sep } from "node:path";
import { BuildError } from "../errors.js";

/**
 * Confinement of a build to its artifact is done by construction in kbuild
 * (tools/kbuild): kustomize runs on a filesystem that resolves every path it
 * reads, symbolic links included, and refuses what lands outside the
 * artifact. No lexical check of kustomization files is made here any more:
 * it could not agree with what kustomize reads (YAML merge keys, several
 * documents, duplicate keys, aliases, generator and transformer
 * configurations in files or inline, links). See docs/architecture.md,
 * "Build confinement".
 *
 * What is left is the one file the controller itself reads from the artifact
 * before the build: the stage's kustomization, to add the stage's patches.
 */

/**
 * Reads `file` (inside the resolved artifact root `realRoot`) after resolving
 * it: a kustomization that is a symbolic link out of the artifact is refused,
 * not read.
 */
export async function readConfinedFile(realRoot: string, file: string, stageIndex: number): Promise<string> {
  const shown = relative(realRoot, file) || ".";
  let real: string;
  try {
    real = await realpath(file);
  } catch {
    throw new BuildError(`spec.stages[${stageIndex}]: ${shown} cannot be read (a symbolic link to nothing?)`);
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep)) {
    throw new BuildError(`spec.stages[${stageIndex}]: ${shown} resolves outside the artifact through a symbolic link; a build may only read files inside it`);
  }
  return readFile(real, "utf8");
}

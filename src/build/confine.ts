import { readdir, readFile } from "node:fs/promises";
import { join, posix } from "node:path";
import { parse } from "yaml";
import { BuildError } from "../errors.js";
import { kustomizationFileIn } from "./kustomization.js";

/**
 * kustomize runs with LoadRestrictionsNone, as in Flux, so a kustomization may
 * read files from sibling directories of the artifact. Flux keeps every read
 * inside the artifact with a confined filesystem; the kustomize binary has
 * none, so instead every kustomization file in the artifact is checked before
 * the build: no path it names may be absolute, a `file:` URL, or climb out of
 * the artifact root with `..`. Without this a tenant could render, say, the
 * controller's service-account token into a ConfigMap.
 */

type Reference = { field: string; value: string };

const PATH_LISTS = [
  "resources",
  "bases",
  "components",
  "crds",
  "configurations",
  "generators",
  "transformers",
  "validators",
  "patchesStrategicMerge",
] as const;

function strings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === "string");
  return [];
}

function records(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter((v): v is Record<string, unknown> => typeof v === "object" && v !== null) : [];
}

/** Every string in a kustomization that kustomize reads as a local path. */
export function pathReferences(kustomization: Record<string, unknown>): Reference[] {
  const refs: Reference[] = [];
  for (const field of PATH_LISTS) {
    for (const value of strings(kustomization[field])) refs.push({ field, value });
  }
  for (const field of ["patches", "patchesJson6902", "replacements"] as const) {
    for (const [i, entry] of records(kustomization[field]).entries()) {
      for (const value of strings(entry["path"])) refs.push({ field: `${field}[${i}].path`, value });
    }
  }
  for (const field of ["configMapGenerator", "secretGenerator"] as const) {
    for (const [i, generator] of records(kustomization[field]).entries()) {
      for (const file of strings(generator["files"])) {
        // `key=path` names the data key; the path follows the first `=`.
        const eq = file.indexOf("=");
        refs.push({ field: `${field}[${i}].files`, value: eq >= 0 ? file.slice(eq + 1) : file });
      }
      for (const value of [...strings(generator["envs"]), ...strings(generator["env"])]) {
        refs.push({ field: `${field}[${i}].envs`, value });
      }
    }
  }
  const openapi = kustomization["openapi"];
  if (typeof openapi === "object" && openapi !== null) {
    for (const value of strings((openapi as Record<string, unknown>)["path"])) refs.push({ field: "openapi.path", value });
  }
  for (const [i, chart] of records(kustomization["helmCharts"]).entries()) {
    for (const value of strings(chart["valuesFile"])) refs.push({ field: `helmCharts[${i}].valuesFile`, value });
  }
  const helmGlobals = kustomization["helmGlobals"];
  if (typeof helmGlobals === "object" && helmGlobals !== null) {
    for (const key of ["chartHome", "configHome"]) {
      for (const value of strings((helmGlobals as Record<string, unknown>)[key])) refs.push({ field: `helmGlobals.${key}`, value });
    }
  }
  // Inline patches and generator configs are YAML, not paths.
  return refs.filter((ref) => ref.value !== "" && !ref.value.includes("\n"));
}

/**
 * Why `value`, named in the kustomization in root-relative directory `dir`,
 * leaves the artifact root — or undefined when it stays inside.
 */
export function escapesRoot(dir: string, value: string): string | undefined {
  if (value.startsWith("/")) return "is an absolute path";
  if (/^file:/i.test(value)) return "is a file: URL";
  const resolved = posix.normalize(posix.join(dir || ".", value));
  if (resolved === ".." || resolved.startsWith("../")) return "points outside the artifact";
  return undefined;
}

/**
 * Checks every kustomization file under `root` (symlinks are not followed;
 * the artifact unpacker refuses links that leave the artifact). Throws a
 * BuildError naming the file, the field and the path at fault.
 */
export async function assertKustomizationsConfined(root: string, stageIndex: number): Promise<void> {
  const visit = async (dirRelative: string): Promise<void> => {
    const entries = await readdir(join(root, dirRelative), { withFileTypes: true });
    const fileName = kustomizationFileIn(entries);
    if (fileName) {
      const fileRelative = dirRelative ? `${dirRelative}/${fileName}` : fileName;
      let kustomization: unknown;
      try {
        kustomization = parse(await readFile(join(root, fileRelative), "utf8"));
      } catch {
        kustomization = undefined; // kustomize reports unreadable kustomizations itself
      }
      if (typeof kustomization === "object" && kustomization !== null && !Array.isArray(kustomization)) {
        for (const ref of pathReferences(kustomization as Record<string, unknown>)) {
          const problem = escapesRoot(dirRelative, ref.value);
          if (problem) {
            throw new BuildError(
              `spec.stages[${stageIndex}]: ${fileRelative}: ${ref.field} "${ref.value}" ${problem}; ` +
                "kustomizations may only read files inside the artifact",
            );
          }
        }
      }
    }
    for (const entry of entries) {
      if (entry.isDirectory()) await visit(dirRelative ? `${dirRelative}/${entry.name}` : entry.name);
    }
  };
  await visit("");
}

import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";

/** The file names kustomize recognises, in its order of preference. */
export const KUSTOMIZATION_FILE_NAMES = ["kustomization.yaml", "kustomization.yml", "Kustomization"] as const;

export const KUSTOMIZATION_API_VERSION = "kustomize.config.k8s.io/v1beta1";

export function isKustomizationFileName(name: string): boolean {
  return (KUSTOMIZATION_FILE_NAMES as readonly string[]).includes(name);
}

/** The name of the kustomization file among a directory's entries, if any. */
export function kustomizationFileIn(entries: Iterable<{ name: string; isDirectory(): boolean }>): string | undefined {
  const files = new Set<string>();
  for (const entry of entries) if (!entry.isDirectory()) files.add(entry.name);
  return KUSTOMIZATION_FILE_NAMES.find((name) => files.has(name));
}

/** Go's sort.Strings order (bytes), which filepath.Walk visits in. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * The resources of the kustomization Flux generates for a directory that has
 * none: walking it recursively in lexical order, every `.yaml`/`.yml` file, and
 * every sub-directory holding its own kustomization file (as one entry, not
 * descended into). Paths are `./`-relative with forward slashes. Whether the
 * files are Kubernetes manifests is left to kustomize, which names the file it
 * cannot read.
 */
export async function listGeneratedResources(dir: string): Promise<string[]> {
  const resources: string[] = [];
  const walk = async (absolute: string, relative: string): Promise<void> => {
    const entries = (await readdir(absolute, { withFileTypes: true })).sort((a, b) => byteOrder(a.name, b.name));
    for (const entry of entries) {
      const childRelative = `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        const childAbsolute = join(absolute, entry.name);
        if (kustomizationFileIn(await readdir(childAbsolute, { withFileTypes: true }))) resources.push(childRelative);
        else await walk(childAbsolute, childRelative);
      } else if (entry.name.endsWith(".yaml") || entry.name.endsWith(".yml")) {
        resources.push(childRelative);
      }
    }
  };
  await walk(dir, ".");
  return resources;
}

/** The text of a generated kustomization listing `resources`. */
export function renderGeneratedKustomization(resources: readonly string[]): string {
  return stringify({ apiVersion: KUSTOMIZATION_API_VERSION, kind: "Kustomization", resources: [...resources] });
}

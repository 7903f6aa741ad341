/**
 * Writes the CRD YAML under config/crd/ from the schemas in TypeScript.
 *
 *   npm run generate                               (after npm run build)
 *   node --import tsx src/api/generate-crds.ts     (from the sources)
 */
import { mkdirSync, realpathSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { stageInventoryCrd, stageSetCrd, type CustomResourceDefinition } from "./crds.js";
import { repoRoot } from "../util/tools.js";

/** Program output (not a log line). */
const print = (line: string): void => void process.stdout.write(`${line}\n`);

export const CRD_DIRECTORY = "config/crd";

export const GENERATE_COMMAND = "npm run generate";

export interface GeneratedFile {
  /** Relative to the repository root. */
  path: string;
  content: string;
}

const HEADER = [
  "# Generated from src/api/schema.ts by src/api/generate-crds.ts. Do not edit.",
  `# Regenerate with: ${GENERATE_COMMAND}`,
  "",
].join("\n");

export function renderCrd(crd: CustomResourceDefinition): string {
  // lineWidth 0: never fold long descriptions, so diffs stay line-per-field.
  return HEADER + "---\n" + stringify(crd, { lineWidth: 0, indent: 2, aliasDuplicateObjects: false });
}

export function generatedCrdFiles(): GeneratedFile[] {
  return [stageSetCrd(), stageInventoryCrd()].map((crd) => ({
    path: `${CRD_DIRECTORY}/${crd.metadata.name.replace(/^([^.]+)\.(.+)$/, "$2_$1")}.yaml`,
    content: renderCrd(crd),
  }));
}

export function writeCrdFiles(root: string = repoRoot()): string[] {
  const written: string[] = [];
  for (const file of generatedCrdFiles()) {
    const target = join(root, file.path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, file.content);
    written.push(file.path);
  }
  return written;
}

function isEntryPoint(): boolean {
  const invoked = process.argv[1];
  if (invoked === undefined) return false;
  try {
    return realpathSync(invoked) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  for (const path of writeCrdFiles()) print(`wrote ${path}`);
}

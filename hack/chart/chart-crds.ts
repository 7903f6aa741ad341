/**
 * Writes the chart's CRD templates (charts/stageset-controller/templates/crd-*.yaml)
 * from config/crd/, the one source of the CRDs: each template is the CRD as
 * generated, behind `crds.create`, with the chart's labels and
 * `helm.sh/resource-policy: keep` added. A unit test fails when they are stale.
 *
 *   make chart                                    (CRD templates and the chart README)
 *   node dist/hack/chart/chart-crds.js            (after npm run build)
 */
import { readdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { repoRoot } from "../../src/util/tools.js";

export const CHART_DIRECTORY = "charts/stageset-controller";
export const CRD_SOURCE_DIRECTORY = "config/crd";
export const REGENERATE_COMMAND = "make chart";

/** Where the labels helper is spliced in (a key no CRD carries). */
const LABELS_PLACEHOLDER = "__stageset_chart_labels__";

export interface ChartCrdFile {
  /** Relative to the repository root. */
  path: string;
  /** The config/crd file it was made from, relative to the repository root. */
  source: string;
  content: string;
}

interface CrdLike {
  kind?: string;
  metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { names?: { plural?: string } };
}

/** The chart template for one config/crd file's text. */
export function chartCrdTemplate(sourcePath: string, text: string): string {
  const crd = parse(text) as CrdLike;
  if (crd?.kind !== "CustomResourceDefinition" || !crd.metadata?.name) {
    throw new Error(`${sourcePath}: not a CustomResourceDefinition`);
  }
  const metadata = crd.metadata;
  const withChartMetadata = {
    ...crd,
    metadata: {
      ...metadata,
      labels: { ...(metadata.labels ?? {}), [LABELS_PLACEHOLDER]: "" },
      annotations: { ...(metadata.annotations ?? {}), "helm.sh/resource-policy": "keep" },
    },
  };
  // Same layout as config/crd (src/api/generate-crds.ts); `{{` in a description would be template syntax.
  const body = stringify(withChartMetadata, { lineWidth: 0, indent: 2, aliasDuplicateObjects: false })
    .replaceAll("{{", '{{ "{{" }}')
    .replace(new RegExp(`^( *)${LABELS_PLACEHOLDER}: .*$`, "m"), (_line, indent: string) => `${indent}{{- include "stageset-controller.labels" . | nindent ${indent.length} }}`);
  return [
    `{{- /* Generated from ${sourcePath} by hack/chart/chart-crds.ts. Do not edit; run: ${REGENERATE_COMMAND} */ -}}`,
    "{{- if .Values.crds.create }}",
    body.trimEnd(),
    "{{- end }}",
    "",
  ].join("\n");
}

/** The chart's CRD templates as they should be, from config/crd/ of `root`. */
export function chartCrdFiles(root: string = repoRoot()): ChartCrdFile[] {
  const dir = join(root, CRD_SOURCE_DIRECTORY);
  return readdirSync(dir)
    .filter((name) => name.endsWith(".yaml"))
    .sort()
    .map((name) => {
      const source = `${CRD_SOURCE_DIRECTORY}/${name}`;
      const text = readFileSync(join(dir, name), "utf8");
      const plural = (parse(text) as CrdLike).spec?.names?.plural ?? name.replace(/\.yaml$/, "");
      return { path: `${CHART_DIRECTORY}/templates/crd-${plural}.yaml`, source, content: chartCrdTemplate(source, text) };
    });
}

export function writeChartCrdFiles(root: string = repoRoot()): string[] {
  return chartCrdFiles(root).map((file) => {
    writeFileSync(join(root, file.path), file.content);
    return file.path;
  });
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
  for (const path of writeChartCrdFiles()) process.stdout.write(`wrote ${path}\n`);
}

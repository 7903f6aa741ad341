import { parseDocument, type Document, type ParseOptions, type DocumentOptions, type SchemaOptions, type ScalarTag, type Tags } from "yaml";
import type { KubeObject } from "../api/types.js";
import { BuildError } from "../errors.js";

/**
 * How scalars resolve. Flux reads kustomize's output with go-yaml v3 and
 * re-reads a substituted object with go-yaml v2 (sigs.k8s.io/yaml). Both
 * resolve `0644` as octal (420, which `defaultMode` needs) and keep
 * timestamps and `12:30` as strings; only v2 reads `yes`/`on`/`y` as booleans.
 */
export type ScalarDialect = "go-yaml-v3" | "go-yaml-v2";

const BOOL_TAG = "tag:yaml.org,2002:bool";

const v3Bool: ScalarTag = {
  tag: BOOL_TAG,
  default: true,
  identify: (value) => typeof value === "boolean",
  test: /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/,
  resolve: (source) => source[0] === "t" || source[0] === "T",
};

const octalWithPrefix: ScalarTag = {
  tag: "tag:yaml.org,2002:int",
  default: true,
  format: "OCT",
  identify: (value) => typeof value === "number" && Number.isInteger(value),
  test: /^[-+]?0o[0-7_]+$/,
  resolve: (source) => {
    const sign = source.startsWith("-") ? -1 : 1;
    return sign * Number.parseInt(source.replace(/^[-+]?0o/, "").replace(/_/g, ""), 8);
  },
};

function goYamlTags(dialect: ScalarDialect) {
  return (yaml11: Tags): Tags => {
    const kept = yaml11.filter((tag) => {
      if (typeof tag !== "object" || !("tag" in tag)) return true;
      if (tag.format === "TIME" || tag.tag === "tag:yaml.org,2002:timestamp") return false;
      return !(dialect === "go-yaml-v3" && tag.tag === BOOL_TAG);
    });
    return dialect === "go-yaml-v3" ? [v3Bool, octalWithPrefix, ...kept] : [octalWithPrefix, ...kept];
  };
}

function parseOptions(dialect: ScalarDialect): ParseOptions & DocumentOptions & SchemaOptions {
  return { version: "1.1", customTags: goYamlTags(dialect), prettyErrors: false, strict: false };
}

const V3_OPTIONS = parseOptions("go-yaml-v3");
const V2_OPTIONS = parseOptions("go-yaml-v2");

export class ManifestParseError extends Error {
  /** 1-based line within the parsed text. */
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

function firstError(doc: Document.Parsed, text: string): ManifestParseError | undefined {
  const err = doc.errors[0];
  if (!err) return undefined;
  const line = text.slice(0, err.pos[0]).split("\n").length;
  // The parser's message only; never the excerpt, which could hold secret values.
  return new ManifestParseError(err.message.split("\n")[0] ?? err.code, line);
}

/**
 * Splits kustomize's output into its documents' texts. kustomize separates
 * documents with a `---` line and never emits one inside a value (multi-line
 * strings are indented block scalars), so a line split is exact; Flux splits
 * the same way for its multi-document substitution.
 */
export function splitDocuments(text: string): string[] {
  return text.split(/^---[ \t]*(?:\r?\n|$)/m).filter((chunk) => chunk.trim() !== "");
}

/** Parses one document; `null` for an empty one. */
export function parseManifest(text: string, dialect: ScalarDialect = "go-yaml-v3"): unknown {
  const doc = parseDocument(text, dialect === "go-yaml-v3" ? V3_OPTIONS : V2_OPTIONS);
  const error = firstError(doc, text);
  if (error) throw error;
  return doc.toJS({ maxAliasCount: 100 });
}

/** Parses one of kustomize's output documents. */
export function parseRendered(source: string, stageIndex: number): unknown {
  try {
    return parseManifest(source);
  } catch (err) {
    if (err instanceof ManifestParseError) {
      throw new BuildError(`spec.stages[${stageIndex}]: kustomize output is not valid YAML (line ${err.line}: ${err.message})`);
    }
    throw err;
  }
}

export function isKubeObject(value: unknown): value is KubeObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) && typeof (value as { kind?: unknown }).kind === "string";
}

function isListObject(value: KubeObject): boolean {
  return value.kind.endsWith("List") && Array.isArray(value["items"]);
}

/**
 * Replaces every `kind: List` (and any `*List` kind carrying `items`) by its
 * items, recursively, as kustomize and kubectl do. Other values pass through.
 */
export function flattenLists(values: Iterable<unknown>, out: unknown[] = []): unknown[] {
  for (const value of values) {
    if (isKubeObject(value) && isListObject(value)) flattenLists(value["items"] as unknown[], out);
    else out.push(value);
  }
  return out;
}

import { isNode, isScalar, parseDocument, visit, type Document, type ParseOptions, type DocumentOptions, type SchemaOptions, type ScalarTag, type Tags } from "yaml";
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

// `uniqueKeys` is off because the yaml package checks it with a scan per key
// (quadratic: a 1 MiB map of short keys took 6.7 s here, 0.5 s without);
// duplicateKeyLine() checks the same rule in one pass.
function parseOptions(dialect: ScalarDialect): ParseOptions & DocumentOptions & SchemaOptions {
  return { version: "1.1", customTags: goYamlTags(dialect), prettyErrors: false, strict: false, uniqueKeys: false };
}

/**
 * The largest document parsed: etcd's default request limit (1.5 MiB), so
 * nothing the API server would accept is refused, and one document never
 * holds the event loop for long (parsing is about 0.5 s per MiB on a loaded
 * two-core machine, linear).
 */
export const MAX_DOCUMENT_CHARS = 1.5 * 1024 * 1024;

const V3_OPTIONS = parseOptions("go-yaml-v3");
const V2_OPTIONS = parseOptions("go-yaml-v2");

/**
 * What each of the YAML parser's error codes means, in words that never
 * quote the text: the parser's own messages may (`Unresolved tag: !…`,
 * `Invalid escape sequence \x…`, the alias name), and after substitution the
 * text may hold a Secret's value.
 */
const YAML_PROBLEMS: ReadonlyMap<string, string> = new Map([
  ["ALIAS_PROPS", "an alias has an anchor or a tag"],
  ["BAD_ALIAS", "an alias (*name) is malformed"],
  ["BAD_COLLECTION_TYPE", "a tag does not fit its collection"],
  ["BAD_DIRECTIVE", "a directive is malformed"],
  ["BAD_DQ_ESCAPE", "a double-quoted string has an invalid escape sequence"],
  ["BAD_INDENT", "bad indentation"],
  ["BAD_PROP_ORDER", "an anchor or tag is misplaced"],
  ["BAD_SCALAR_START", "a plain value starts with a character YAML reserves (quote it)"],
  ["BLOCK_AS_IMPLICIT_KEY", "a block value is used as a key"],
  ["BLOCK_IN_FLOW", "a block value is inside a flow collection"],
  ["DUPLICATE_KEY", "a map has the same key twice"],
  ["MISSING_CHAR", "a closing quote, bracket, comma or colon is missing"],
  ["MULTILINE_IMPLICIT_KEY", "a key spans several lines"],
  ["MULTIPLE_ANCHORS", "a node has more than one anchor"],
  ["MULTIPLE_TAGS", "a node has more than one tag"],
  ["NON_STRING_KEY", "a key is not a string"],
  ["TAB_AS_INDENT", "a tab is used for indentation"],
  ["TAG_RESOLVE_FAILED", "a tag cannot be resolved"],
  ["UNEXPECTED_TOKEN", "unexpected characters"],
  ["BLOCK_FOLDED", "a folded block scalar is malformed"],
  ["BLOCK_LITERAL", "a literal block scalar is malformed"],
  ["QUOTE_DOUBLE", "a double-quoted string is not closed"],
  ["QUOTE_SINGLE", "a single-quoted string is not closed"],
  ["RESOURCE_EXHAUSTION", "the document is too large or too deeply nested"],
]);

/** How many aliases one document may dereference: a YAML alias bomb is refused, not expanded. */
const MAX_ALIAS_COUNT = 100;

export class ManifestParseError extends Error {
  /**
   * 1-based line within the parsed text. `message` never quotes the text
   * (see YAML_PROBLEMS), so it is safe for objects holding secret values.
   */
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
  return new ManifestParseError(YAML_PROBLEMS.get(err.code) ?? `YAML error ${err.code}`, line);
}

/**
 * The line of the first map key that appears twice in its map (YAML's and
 * go-yaml's rule), in one pass over the document; undefined when there is
 * none. Merge keys (`<<`) may repeat. Non-scalar keys are compared by their
 * JSON form.
 */
function duplicateKeyLine(doc: Document.Parsed, text: string): number | undefined {
  let found: number | undefined;
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = pair.key;
        // A merge key (`<<`) is a Scalar whose value is a symbol in YAML 1.1 mode; it may repeat.
        if (isScalar(key) && (typeof key.value === "symbol" || key.value === "<<")) continue;
        const id = isScalar(key) ? `s:${String(key.value)}` : `j:${JSON.stringify(key ?? null)}`;
        if (seen.has(id)) {
          const offset = isNode(key) && key.range ? key.range[0] : 0;
          found = text.slice(0, offset).split("\n").length;
          return visit.BREAK;
        }
        seen.add(id);
      }
      return undefined;
    },
  });
  return found;
}

/** Whatever parsing throws (rather than reports), as a ManifestParseError without the thrown message. */
function thrownByParser(err: unknown): ManifestParseError {
  if (err instanceof ManifestParseError) return err;
  const message = err instanceof Error ? err.message : "";
  if (err instanceof RangeError) return new ManifestParseError("the document is nested too deeply", 0);
  if (message.startsWith("Excessive alias count")) {
    return new ManifestParseError(`the document expands more than ${MAX_ALIAS_COUNT} aliases (a YAML alias bomb)`, 0);
  }
  if (message.startsWith("Unresolved alias")) {
    return new ManifestParseError("an alias (*name) refers to no anchor defined before it; a value that starts with * must be quoted", 0);
  }
  return new ManifestParseError(`the YAML parser failed (${err instanceof Error ? err.name : typeof err})`, 0);
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
  if (text.length > MAX_DOCUMENT_CHARS) {
    throw new ManifestParseError(`the document is larger than ${MAX_DOCUMENT_CHARS / 1024 / 1024} MiB, more than the API server stores for one object`, 0);
  }
  try {
    const doc = parseDocument(text, dialect === "go-yaml-v3" ? V3_OPTIONS : V2_OPTIONS);
    const error = firstError(doc, text);
    if (error) throw error;
    const duplicate = duplicateKeyLine(doc, text);
    if (duplicate !== undefined) throw new ManifestParseError(YAML_PROBLEMS.get("DUPLICATE_KEY")!, duplicate);
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    throw thrownByParser(err);
  }
}

/** "line 3: " or "" when the parser gave no position. */
export function lineOf(err: ManifestParseError): string {
  return err.line > 0 ? `line ${err.line}: ` : "";
}

/** Parses one of kustomize's output documents; refuses an object whose name or namespace is not a string. */
export function parseRendered(source: string, stageIndex: number): unknown {
  let value: unknown;
  try {
    value = parseManifest(source);
  } catch (err) {
    if (err instanceof ManifestParseError) {
      throw new BuildError(`spec.stages[${stageIndex}]: kustomize output is not valid YAML (${lineOf(err)}${err.message})`);
    }
    throw err;
  }
  assertIdentityFields(value, stageIndex);
  return value;
}

/**
 * Parses kbuild's `--output json` (one JSON object per line, see
 * RenderedFormat in kustomize.ts) into its values, in order, refusing an
 * object whose name or namespace is not a string as parseRendered does.
 * Throws BuildError naming the stage for a line that is not JSON or is
 * larger than MAX_DOCUMENT_CHARS.
 */
export function parseRenderedJsonLine(line: string, stageIndex: number): unknown {
  if (line.length > MAX_DOCUMENT_CHARS) {
    throw new BuildError(`spec.stages[${stageIndex}]: a rendered object is larger than ${MAX_DOCUMENT_CHARS / 1024 / 1024} MiB, more than the API server stores for one object`);
  }
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new BuildError(`spec.stages[${stageIndex}]: the build helper's output is not JSON (${(err as Error).message})`);
  }
  assertIdentityFields(value, stageIndex);
  return value;
}

/** The lines of kbuild's `--output json`, empty ones left out. */
export function splitJsonLines(text: string): string[] {
  return text.split("\n").filter((line) => line !== "");
}

/**
 * A rendered object's `metadata` must be a map and its `name` and
 * `namespace` strings: anything else would be sent (or compared, or used in
 * an inventory id) as "[object Object]". List items are checked too. The
 * message names the object and the field and says what type it has, never
 * the value.
 */
export function assertIdentityFields(value: unknown, stageIndex: number): void {
  if (!isKubeObject(value)) return;
  const shown = describeRendered(value);
  const metadata = (value as { metadata?: unknown }).metadata;
  if (metadata !== undefined && metadata !== null && (typeof metadata !== "object" || Array.isArray(metadata))) {
    throw new BuildError(`spec.stages[${stageIndex}]: ${shown}: metadata must be a map, not ${typeName(metadata)}; fix the manifest in the stage's source`, {
      terminal: true,
    });
  }
  for (const field of ["name", "namespace", "generateName"] as const) {
    const fieldValue = (metadata as Record<string, unknown> | null | undefined)?.[field];
    if (fieldValue !== undefined && fieldValue !== null && typeof fieldValue !== "string") {
      throw new BuildError(
        `spec.stages[${stageIndex}]: ${shown}: metadata.${field} must be a string, not ${typeName(fieldValue)}; fix the manifest in the stage's source (quote the value)`,
        { terminal: true },
      );
    }
  }
  if (isListObject(value)) for (const item of value["items"] as unknown[]) assertIdentityFields(item, stageIndex);
}

/** `Deployment "web"`, or the kind alone when the name is not a string. */
function describeRendered(value: KubeObject): string {
  const name = (value.metadata as { name?: unknown } | undefined)?.name;
  return typeof name === "string" && name !== "" ? `${value.kind} ${JSON.stringify(name)}` : `a ${value.kind} object`;
}

function typeName(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  return `a ${typeof value}`;
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

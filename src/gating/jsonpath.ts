/**
 * kubectl-style JSONPath for `spec.version.fromObject.fieldPath`, evaluated
 * with jsonpath-plus.
 *
 * Why the translation is ours: users write the dialect of `kubectl get -o
 * jsonpath` — a template in braces (`{.data.version}`), member names that run
 * to the next `.` or `[` with dots escaped by a backslash
 * (`{.metadata.labels.app\.kubernetes\.io/version}`), quoted keys in brackets
 * (`['app\.kubernetes\.io/version']`), negative indices. No JSONPath library
 * speaks that dialect: jsonpath-plus (like Goessner's original and RFC 9535)
 * knows neither the braces nor backslash-escaped dots in a dotted name,
 * reads `[-1]` as a key, and its own string syntax gives meaning to
 * characters a Kubernetes key may hold. So the expression is parsed here into segments, and handed to the
 * library in one canonical form it reads literally: every member name as a
 * backtick-escaped bracket key (`` ['`app.kubernetes.io/version'] ``),
 * indices and slices as numbers, a negative index as a one-element slice.
 * The library then does the walking (wildcards, recursive descent, slices).
 *
 * What is refused, with a message naming the construct: filter expressions
 * (`[?(...)]`; the library would evaluate script for them, and a version
 * field needs none), unions (`[a,b]`), `range`/`end` templates, literal text
 * or several `{...}` around the expression (the result must be the bare
 * version), and keys holding a character the library's parser reserves
 * (`; [ ] ^ % @ '`, never part of a label, annotation or data key).
 *
 * Deliberate difference to kubectl: a quoted bracket key is one key, dots and
 * all (`['app.kubernetes.io/version']` reads that label); kubectl would split
 * it at the unescaped dots and find nothing. The escaped form kubectl needs
 * works the same here.
 */
import { JSONPath } from "jsonpath-plus";

/** One step of a parsed field path. */
export type FieldPathSegment =
  | { kind: "key"; key: string }
  | { kind: "index"; index: number }
  | { kind: "slice"; start?: number; end?: number; step?: number }
  | { kind: "wildcard" }
  | { kind: "descend" };

/** A field path that is not valid kubectl JSONPath, or uses a refused construct. `message` says which and why. */
export class FieldPathSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FieldPathSyntaxError";
  }
}

/** Characters the jsonpath-plus string parser gives a meaning to even inside a quoted key. */
const RESERVED_IN_KEY = /[;[\]^%@']/;
/** Where kubectl ends a member name (client-go jsonpath `isTerminator`). */
const NAME_TERMINATORS = new Set([".", ",", "[", "]", "$", "@", "{", "}", " ", "\t", "\n", "\r"]);
const INTEGER = /^-?\d+$/;
const SLICE = /^(-?\d*):(-?\d*)(?::(-?\d*))?$/;

/**
 * Parses a kubectl-style JSONPath into segments.
 *
 * Takes `{.a.b}`, `{$.a.b}` or the same without braces (`.a.b`, `$.a.b`,
 * `[0].a`). Returns at least one segment. Throws FieldPathSyntaxError for a
 * malformed or refused expression; the message describes the problem and
 * does not repeat the expression (the caller names the field).
 */
export function parseFieldPath(expression: string): FieldPathSegment[] {
  const inner = stripTemplate(expression);
  const segments: FieldPathSegment[] = [];
  let i = 0;
  if (inner[i] === "$") i++;
  while (i < inner.length) {
    const c = inner[i]!;
    if (c === ".") {
      if (inner[i + 1] === ".") {
        segments.push({ kind: "descend" });
        i += 2;
        if (inner[i] === "[") continue;
      } else {
        i++;
      }
      if (i >= inner.length) throw new FieldPathSyntaxError("ends with a dot; name the field after it, e.g. {.data.version}");
      if (inner[i] === "*") {
        segments.push({ kind: "wildcard" });
        i++;
        continue;
      }
      const { name, next } = readName(inner, i);
      if (name === "") throw new FieldPathSyntaxError(`has an empty field name at position ${i + 1}; write a name after each dot`);
      segments.push({ kind: "key", key: checkedKey(name) });
      i = next;
    } else if (c === "[") {
      const { content, next } = readBracket(inner, i);
      segments.push(bracketSegment(content));
      i = next;
    } else {
      throw new FieldPathSyntaxError(`has an unexpected ${JSON.stringify(c)} at position ${i + 1}; fields are written .name or ['name'], e.g. {.data.version}`);
    }
  }
  if (segments.length === 0) throw new FieldPathSyntaxError("selects the whole object; point it at the field holding the version, e.g. {.data.version}");
  if (segments[segments.length - 1]!.kind === "descend") throw new FieldPathSyntaxError("ends with '..'; name the field to search for, e.g. {..version}");
  return segments;
}

/**
 * The segments as a jsonpath-plus expression that the library reads
 * literally: keys as `` ['`key'] ``, indices and slices as numbers.
 */
export function toJsonPathPlus(segments: readonly FieldPathSegment[]): string {
  let path = "$";
  for (const segment of segments) {
    switch (segment.kind) {
      case "key":
        path += `['\`${segment.key}']`;
        break;
      case "index":
        path += segment.index >= 0 ? `[${segment.index}]` : `[${segment.index}:${segment.index === -1 ? "" : segment.index + 1}]`;
        break;
      case "slice":
        path += `[${segment.start ?? ""}:${segment.end ?? ""}${segment.step === undefined ? "" : `:${segment.step}`}]`;
        break;
      case "wildcard":
        path += "[*]";
        break;
      case "descend":
        path += "..";
        break;
    }
  }
  return path;
}

/**
 * Every value `expression` selects in `object`, in document order (an empty
 * list when it selects nothing). Throws FieldPathSyntaxError for an
 * expression parseFieldPath refuses. Never evaluates script: the library runs
 * with `eval: false`.
 */
export function evaluateFieldPath(expression: string, object: unknown): unknown[] {
  const path = toJsonPathPlus(parseFieldPath(expression));
  if (object === null || typeof object !== "object") return [];
  const result: unknown = JSONPath({ path, json: object, wrap: true, eval: false, resultType: "value" });
  return Array.isArray(result) ? result : [];
}

function stripTemplate(expression: string): string {
  const trimmed = expression.trim();
  if (trimmed === "") throw new FieldPathSyntaxError("is empty; point it at the field holding the version, e.g. {.data.version}");
  let inner = trimmed;
  if (trimmed.startsWith("{")) {
    if (!trimmed.endsWith("}") || countOf(trimmed, "{") !== 1 || countOf(trimmed, "}") !== 1) {
      throw new FieldPathSyntaxError("must be one {...} expression with nothing around it (the value read must be the bare version), e.g. {.data.version}");
    }
    inner = trimmed.slice(1, -1).trim();
  } else if (trimmed.includes("{") || trimmed.includes("}")) {
    throw new FieldPathSyntaxError("must be one {...} expression with nothing around it (the value read must be the bare version), e.g. {.data.version}");
  }
  if (/^(range|end)\b/.test(inner)) throw new FieldPathSyntaxError("uses a range/end template; point it at the one field holding the version instead");
  if (inner.startsWith('"') || inner.startsWith("'")) throw new FieldPathSyntaxError("is literal text, not a path; point it at the field holding the version, e.g. {.data.version}");
  if (inner === "") throw new FieldPathSyntaxError("is empty; point it at the field holding the version, e.g. {.data.version}");
  if (!/^[.$[]/.test(inner)) {
    throw new FieldPathSyntaxError(`must start with '.', '$' or '[' (kubectl JSONPath); write {.${inner}}`);
  }
  return inner;
}

function countOf(text: string, char: string): number {
  return text.split(char).length - 1;
}

/** A member name from `start`: up to the next unescaped terminator; `\x` stands for `x`. */
function readName(text: string, start: number): { name: string; next: number } {
  let name = "";
  let i = start;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\\") {
      if (i + 1 >= text.length) throw new FieldPathSyntaxError("ends with a lone backslash; a backslash escapes the character after it, e.g. app\\.kubernetes\\.io/version");
      name += text[i + 1];
      i += 2;
      continue;
    }
    if (NAME_TERMINATORS.has(c)) break;
    name += c;
    i++;
  }
  return { name, next: i };
}

/** The text between `[` at `start` and its `]` (quotes respected), and the index after the `]`. */
function readBracket(text: string, start: number): { content: string; next: number } {
  let quote: string | undefined;
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== undefined) {
      if (c === "\\") i++;
      else if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === "]") {
      return { content: text.slice(start + 1, i).trim(), next: i + 1 };
    }
  }
  throw new FieldPathSyntaxError(`has a '[' at position ${start + 1} without its ']'`);
}

function bracketSegment(content: string): FieldPathSegment {
  if (content === "*") return { kind: "wildcard" };
  if (content.startsWith("?")) {
    throw new FieldPathSyntaxError("uses a filter expression [?(...)], which is not evaluated here; point it at the field directly (an index such as [0], or a label)");
  }
  const quote = content[0];
  if (quote === "'" || quote === '"') {
    const close = closingQuote(content, quote);
    if (close === -1) throw new FieldPathSyntaxError(`has the key [${content}] without its closing ${quote}`);
    const rest = content.slice(close + 1).trim();
    if (rest.startsWith(",")) throw new FieldPathSyntaxError(`uses a union [${content}]; a version is one value, point it at one field`);
    if (rest !== "") throw new FieldPathSyntaxError(`has [${content}], which is not one quoted key; write one key per bracket, e.g. ['app.kubernetes.io/version']`);
    const key = unescape(content.slice(1, close));
    if (key === "") throw new FieldPathSyntaxError("has an empty key ['']; name the key");
    return { kind: "key", key: checkedKey(key) };
  }
  if (content.includes(",")) throw new FieldPathSyntaxError(`uses a union [${content}]; a version is one value, point it at one field`);
  if (INTEGER.test(content)) return { kind: "index", index: Number.parseInt(content, 10) };
  const slice = SLICE.exec(content);
  if (slice) {
    const number = (text: string | undefined): number | undefined => (text === undefined || text === "" ? undefined : Number.parseInt(text, 10));
    const step = number(slice[3]);
    if (step !== undefined && step <= 0) throw new FieldPathSyntaxError(`has the slice [${content}] with a step that is not positive; use a step of 1 or more`);
    // jsonpath-plus reads an end of 0 as "to the end"; kubectl (and Python) select nothing.
    if (slice[2] !== undefined && slice[2] !== "" && number(slice[2]) === 0) throw new FieldPathSyntaxError(`has the slice [${content}], which selects nothing`);
    const segment: FieldPathSegment = { kind: "slice" };
    const start = number(slice[1]);
    const end = number(slice[2]);
    if (start !== undefined) segment.start = start;
    if (end !== undefined) segment.end = end;
    if (step !== undefined) segment.step = step;
    return segment;
  }
  throw new FieldPathSyntaxError(`has [${content}], which is not an index, a slice, * or a quoted key such as ['app.kubernetes.io/version']`);
}

/** Index of the quote closing the one at 0 (a backslash escapes the next character), or -1. */
function closingQuote(text: string, quote: string): number {
  for (let i = 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === quote) return i;
  }
  return -1;
}

function unescape(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\\" && i + 1 < text.length) {
      out += text[i + 1];
      i++;
    } else {
      out += c;
    }
  }
  return out;
}

function checkedKey(key: string): string {
  const bad = RESERVED_IN_KEY.exec(key);
  if (bad) throw new FieldPathSyntaxError(`has the key ${JSON.stringify(key)} holding ${JSON.stringify(bad[0])}, which the JSONPath evaluator cannot address (; [ ] ^ % @ ' are reserved)`);
  return key;
}

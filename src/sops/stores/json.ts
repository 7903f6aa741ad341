/**
 * The JSON store and the binary store (a JSON object `{"data": …, "sops":
 * …}`). JSON is parsed with an order-keeping parser (JSON.parse reorders
 * integer-like keys and loses int/float and 64-bit precision) and emitted the
 * way sops' JSON store does: Go's json.Marshal of every value, indented with
 * a tab, a final newline. The binary store emits the decrypted `data` bytes.
 */
import type { SopsScalar } from "../cipher.js";
import type { TLeaf, TMap, TNode } from "../tree.js";
import { MalformedError, type LoadedFile } from "./common.js";

type JValue =
  | { t: "obj"; entries: Array<[string, JValue]> }
  | { t: "arr"; items: JValue[] }
  | { t: "str"; v: Buffer }
  | { t: "int"; v: bigint }
  | { t: "float"; v: number }
  | { t: "bool"; v: boolean }
  | { t: "time"; v: string }
  | { t: "null" };

const MAX_DEPTH = 1000;

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) < 0x20) return true;
  return false;
}

class Parser {
  pos = 0;
  constructor(readonly s: string) {}

  fail(what: string): never {
    throw new MalformedError(`JSON syntax error at offset ${this.pos}: ${what}`);
  }

  ws(): void {
    while (this.pos < this.s.length && " \t\r\n".includes(this.s[this.pos]!)) this.pos++;
  }

  value(depth: number): JValue {
    if (depth > MAX_DEPTH) this.fail("nested too deeply");
    this.ws();
    const c = this.s[this.pos];
    if (c === "{") {
      this.pos++;
      const entries: Array<[string, JValue]> = [];
      this.ws();
      if (this.s[this.pos] === "}") {
        this.pos++;
        return { t: "obj", entries };
      }
      for (;;) {
        this.ws();
        if (this.s[this.pos] !== '"') this.fail("expected a key");
        const key = this.string();
        this.ws();
        if (this.s[this.pos] !== ":") this.fail("expected ':'");
        this.pos++;
        entries.push([key, this.value(depth + 1)]);
        this.ws();
        if (this.s[this.pos] === ",") {
          this.pos++;
          continue;
        }
        if (this.s[this.pos] === "}") {
          this.pos++;
          return { t: "obj", entries };
        }
        this.fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      this.pos++;
      const items: JValue[] = [];
      this.ws();
      if (this.s[this.pos] === "]") {
        this.pos++;
        return { t: "arr", items };
      }
      for (;;) {
        items.push(this.value(depth + 1));
        this.ws();
        if (this.s[this.pos] === ",") {
          this.pos++;
          continue;
        }
        if (this.s[this.pos] === "]") {
          this.pos++;
          return { t: "arr", items };
        }
        this.fail("expected ',' or ']'");
      }
    }
    if (c === '"') return { t: "str", v: Buffer.from(this.string(), "utf8") };
    for (const [word, v] of [
      ["true", { t: "bool", v: true }],
      ["false", { t: "bool", v: false }],
      ["null", { t: "null" }],
    ] as const) {
      if (this.s.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.s.slice(this.pos, this.pos + 400));
    if (!m) this.fail("unexpected character");
    this.pos += m[0].length;
    // Go: json.Number.Int64() first, else Float64()
    if (!m[2] && !m[3]) {
      const v = BigInt(m[0]);
      if (v >= -(2n ** 63n) && v < 2n ** 63n) return { t: "int", v };
    }
    return { t: "float", v: Number(m[0]) };
  }

  string(): string {
    const end = this.s.indexOf('"', this.pos + 1);
    // fast path: no escapes
    if (end !== -1 && !this.s.slice(this.pos + 1, end).includes("\\")) {
      const raw = this.s.slice(this.pos + 1, end);
      if (hasControl(raw)) this.fail("control character in string");
      this.pos = end + 1;
      return raw;
    }
    let i = this.pos + 1;
    while (i < this.s.length && this.s[i] !== '"') i += this.s[i] === "\\" ? 2 : 1;
    if (i >= this.s.length) this.fail("unterminated string");
    const literal = this.s.slice(this.pos, i + 1);
    if (hasControl(literal)) this.fail("control character in string");
    let text: string;
    try {
      text = JSON.parse(literal) as string;
    } catch {
      this.fail("bad escape in string");
    }
    this.pos = i + 1;
    return text;
  }
}

/** Parses JSON keeping key order and number kinds. */
function parseJson(text: string): JValue {
  const p = new Parser(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  const v = p.value(0);
  p.ws();
  if (p.pos !== p.s.length) p.fail("trailing data");
  return v;
}

function toNode(v: JValue, set: (nv: JValue) => void): TNode {
  switch (v.t) {
    case "obj":
      return objToMap(v);
    case "arr":
      return {
        kind: "seq",
        items: v.items.map((item, i) =>
          toNode(item, (nv) => {
            v.items[i] = nv;
          }),
        ),
      };
    case "null":
      return { kind: "leaf", value: null, set: () => undefined };
    default: {
      const leaf: TLeaf = { kind: "leaf", value: v as SopsScalar, set: (s) => set(s) };
      return leaf;
    }
  }
}

function objToMap(obj: Extract<JValue, { t: "obj" }>): TMap {
  return {
    kind: "map",
    items: obj.entries.map((entry) => ({
      kind: "entry" as const,
      key: entry[0],
      value: toNode(entry[1], (nv) => {
        entry[1] = nv;
      }),
    })),
  };
}

/** Go's json.Marshal of a string (HTML-safe escaping, \b and \f as Go ≥ 1.22 writes them). */
export function goJsonString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (c < 0x20 || ch === "<" || ch === ">" || ch === "&" || c === 0x2028 || c === 0x2029) {
      out += "\\u" + c.toString(16).padStart(4, "0");
    } else if (c >= 0xd800 && c <= 0xdfff) out += "\\ufffd";
    else out += ch;
  }
  return out + '"';
}

/** Go's json.Marshal(float64). */
function goJsonFloat(f: number): string {
  if (!Number.isFinite(f)) throw new MalformedError("a float value is not finite and cannot be written as JSON");
  return Object.is(f, -0) ? "-0" : String(f);
}

function emitValue(v: JValue, indent: string): string {
  const inner = indent + "\t";
  switch (v.t) {
    case "obj":
      if (v.entries.length === 0) return "{}";
      return `{\n${v.entries.map(([k, val]) => `${inner}${goJsonString(k)}: ${emitValue(val, inner)}`).join(",\n")}\n${indent}}`;
    case "arr":
      if (v.items.length === 0) return "[]";
      return `[\n${v.items.map((val) => inner + emitValue(val, inner)).join(",\n")}\n${indent}]`;
    case "str":
      return goJsonString(v.v.toString("utf8"));
    case "int":
      return v.v.toString();
    case "float":
      return goJsonFloat(v.v);
    case "bool":
      return v.v ? "true" : "false";
    case "time":
      return goJsonString(v.v);
    case "null":
      return "null";
  }
}

function jsonToPlain(v: JValue): unknown {
  switch (v.t) {
    case "obj":
      return Object.fromEntries(v.entries.map(([k, val]) => [k, jsonToPlain(val)]));
    case "arr":
      return v.items.map(jsonToPlain);
    case "str":
      return v.v.toString("utf8");
    case "int":
      return Number(v.v);
    case "float":
    case "bool":
      return v.v;
    case "time":
      return v.v;
    case "null":
      return null;
  }
}

function load(text: string): { root: Extract<JValue, { t: "obj" }>; metadata: unknown } {
  const root = parseJson(text);
  if (root.t !== "obj") throw new MalformedError("SOPS JSON files have an object at the top level");
  const seen = new Set<string>();
  for (const [k] of root.entries) {
    if (seen.has(k)) throw new MalformedError(`duplicate key ${JSON.stringify(k)}`);
    seen.add(k);
  }
  const idx = root.entries.findIndex(([k]) => k === "sops");
  let metadata: unknown;
  if (idx !== -1) {
    metadata = jsonToPlain(root.entries[idx]![1]);
    root.entries.splice(idx, 1);
  }
  return { root, metadata };
}

export function loadJson(text: string): LoadedFile {
  const { root, metadata } = load(text);
  return {
    branches: [objToMap(root)],
    metadata,
    emit: () => Buffer.from(emitValue(root, "") + "\n", "utf8"),
  };
}

export function loadBinary(text: string): LoadedFile {
  const { root, metadata } = load(text);
  return {
    branches: [objToMap(root)],
    metadata,
    emit() {
      const data = root.entries.find(([k]) => k === "data")?.[1];
      if (!data) throw new MalformedError("no binary data found (the object has no data key)");
      if (data.t !== "str") throw new MalformedError("the data key does not hold a string");
      return Buffer.from(data.v);
    },
  };
}

/** Whether the text is a JSON object with a top-level `sops` object holding a `mac`. */
export function jsonHasSops(text: string): boolean {
  try {
    const { metadata } = load(text);
    return typeof metadata === "object" && metadata !== null && "mac" in metadata;
  } catch {
    return false;
  }
}


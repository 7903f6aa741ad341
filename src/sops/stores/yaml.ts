/**
 * The YAML store: documents parsed with the `yaml` package (comments kept),
 * read into the sops tree the way sops' YAML store (go-yaml v3) reads them:
 * plain scalars typed by go-yaml v3's rules (`0755` is an int, `1.50` a float
 * hashed as `1.5`), comments as tree items before the value they precede (an
 * inline comment too). Decrypted values are written back into the same
 * documents, so the output keeps the input's layout and comments (sops
 * re-emits with 4-space indentation; the two are equal as YAML).
 */
import { isAlias, isMap, isScalar, isSeq, parseAllDocuments, Scalar, type Document, type Node, type ParsedNode } from "yaml";
import { parseGoFloat, str, type SopsScalar } from "../cipher.js";
import type { TComment, TLeaf, TMap, TNode, TSeq } from "../tree.js";
import { MalformedError, type LoadedFile } from "./common.js";

type CommentHolder = { commentBefore?: string | null; comment?: string | null };

/** One TComment per non-empty line of a comment property; `set` rewrites that line. */
function commentItems(holder: CommentHolder | null | undefined, prop: "commentBefore" | "comment"): TComment[] {
  const text = holder?.[prop];
  if (!holder || typeof text !== "string" || text === "") return [];
  const lines = text.split("\n");
  const out: TComment[] = [];
  lines.forEach((line, i) => {
    if (line === "") return;
    out.push({
      kind: "comment",
      text: line,
      set(t: string) {
        lines[i] = t.replace(/\n/g, " ");
        holder[prop] = lines.join("\n");
      },
    });
  });
  return out;
}

const INT_RE = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/;
const FLOAT_RE = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/** Go's strconv.ParseInt(s, 0, 64), falling back to ParseUint as go-yaml v3 does. */
function goParseInt(s: string): bigint | undefined {
  const m = INT_RE.exec(s);
  if (!m) return undefined;
  const sign = m[1]!;
  const body = m[2]!;
  let v: bigint;
  if (/^0[xXoObB]/.test(body)) v = BigInt(body.toLowerCase());
  else if (body.length > 1 && body.startsWith("0")) v = BigInt("0o" + body.slice(1));
  else v = BigInt(body);
  if (sign === "-") v = -v;
  if (v < INT64_MIN || v > UINT64_MAX || (v > 2n ** 63n - 1n && sign !== "")) return undefined;
  return v;
}

/** go-yaml v3's resolution of a plain scalar, as decoded into interface{} (null, bool, int, float, else string). */
export function resolvePlain(s: string): SopsScalar | null {
  switch (s) {
    case "":
    case "~":
    case "null":
    case "Null":
    case "NULL":
      return null;
    case "true":
    case "True":
    case "TRUE":
      return { t: "bool", v: true };
    case "false":
    case "False":
    case "FALSE":
      return { t: "bool", v: false };
    case ".inf":
    case ".Inf":
    case ".INF":
    case "+.inf":
    case "+.Inf":
    case "+.INF":
      return { t: "float", v: Infinity };
    case "-.inf":
    case "-.Inf":
    case "-.INF":
      return { t: "float", v: -Infinity };
    case ".nan":
    case ".NaN":
    case ".NAN":
      return { t: "float", v: NaN };
  }
  if ("+-.0123456789".includes(s[0]!)) {
    const plain = s.replace(/_/g, "");
    const i = goParseInt(plain);
    if (i !== undefined) return { t: "int", v: i };
    if (FLOAT_RE.test(plain)) return { t: "float", v: parseGoFloat(plain) };
  }
  return str(s);
}

const YAML11_BOOLISH = /^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/;

function scalarValue(node: Scalar): SopsScalar | null {
  if (node.tag === "tag:yaml.org,2002:binary" && node.value instanceof Uint8Array) return { t: "str", v: Buffer.from(node.value) };
  if (node.value === null || node.value === undefined) return null;
  const quoted = node.type !== undefined && node.type !== "PLAIN";
  if (quoted || node.tag === "tag:yaml.org,2002:str") return str(String(node.value));
  const src = (node.srcToken as { source?: string } | undefined)?.source;
  if (typeof src !== "string" || src.includes("\n")) return str(String(node.value));
  return resolvePlain(src);
}

function setScalar(node: Scalar, v: SopsScalar): void {
  node.tag = undefined;
  node.format = undefined;
  node.minFractionDigits = undefined;
  node.type = undefined;
  switch (v.t) {
    case "str": {
      const text = v.v.toString("utf8");
      node.value = text;
      if ((resolvePlain(text)?.t ?? "null") !== "str" || YAML11_BOOLISH.test(text)) node.type = "QUOTE_DOUBLE";
      return;
    }
    case "int":
      node.value = v.v >= BigInt(Number.MIN_SAFE_INTEGER) && v.v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v.v) : v.v;
      return;
    case "float":
      node.value = v.v;
      return;
    case "bool":
      node.value = v.v;
      return;
    case "time":
      node.value = v.v;
      node.type = "PLAIN";
      return;
  }
}

function leafOf(node: Scalar): TLeaf {
  const value = scalarValue(node);
  // sops re-emits every value from its typed tree: an int or float written in
  // another form (0755, 0x1F, 1.50, 1_000) comes out canonical (493, 31, 1.5, 1000).
  if (value && (value.t === "int" || value.t === "float") && (node.type === "PLAIN" || node.type === undefined)) setScalar(node, value);
  return { kind: "leaf", value, set: (v) => setScalar(node, v) };
}

function toNode(node: ParsedNode | Node | null | undefined, where: string): TNode {
  if (node === null || node === undefined) return { kind: "leaf", value: null, set: () => undefined };
  if (isAlias(node)) throw new MalformedError(`${where}: YAML aliases are not supported in SOPS files (sops never writes them)`);
  if (isScalar(node)) return leafOf(node);
  if (isMap(node)) return mapOf(node, where);
  if (isSeq(node)) {
    const seq: TSeq = { kind: "seq", items: [] };
    seq.items.push(...commentItems(node, "commentBefore"));
    for (const item of node.items as Array<ParsedNode | null>) {
      seq.items.push(...commentItems(item as CommentHolder, "commentBefore"));
      if (item && isScalar(item)) seq.items.push(...commentItems(item, "comment"));
      seq.items.push(toNode(item, where));
    }
    seq.items.push(...commentItems(node, "comment"));
    return seq;
  }
  throw new MalformedError(`${where}: unsupported YAML node`);
}

function keyText(key: unknown): string {
  if (isScalar(key)) {
    const src = (key.srcToken as { source?: string } | undefined)?.source;
    if ((key.type === "PLAIN" || key.type === undefined) && typeof src === "string") return src;
    return String(key.value);
  }
  if (key === null || key === undefined) return "";
  return String(key);
}

function mapOf(node: ParsedNode | Node, where: string, extra?: { before: TComment[]; after: TComment[] }): TMap {
  if (!isMap(node)) throw new MalformedError(`${where}: a YAML document must be a mapping`);
  const map: TMap = { kind: "map", items: [...(extra?.before ?? []), ...commentItems(node, "commentBefore")] };
  const seen = new Set<string>();
  for (const pair of node.items) {
    const key = keyText(pair.key);
    if (seen.has(key)) throw new MalformedError(`${where}: duplicate key ${JSON.stringify(key)}`);
    seen.add(key);
    map.items.push(...commentItems(pair.key as CommentHolder, "commentBefore"), ...commentItems(pair.key as CommentHolder, "comment"));
    const value = pair.value as ParsedNode | null;
    if (value === null || isScalar(value)) {
      map.items.push(...commentItems(value, "commentBefore"), ...commentItems(value, "comment"));
    }
    map.items.push({ kind: "entry", key, value: toNode(value, where) });
  }
  map.items.push(...commentItems(node, "comment"), ...(extra?.after ?? []));
  return map;
}

export function loadYaml(text: string): LoadedFile {
  const docs = parseAllDocuments(text, { keepSourceTokens: true, uniqueKeys: false, prettyErrors: false, strict: false });
  if (!Array.isArray(docs)) throw new MalformedError("not a YAML stream");
  const list = docs as Document.Parsed[];
  for (const d of list) {
    if (d.errors.length > 0) throw new MalformedError(`YAML syntax error: ${d.errors[0]!.message.split("\n")[0]}`);
  }
  let metadata: unknown;
  const branches: TMap[] = [];
  list.forEach((doc, i) => {
    const where = list.length > 1 ? `document ${i + 1}` : "the document";
    const contents = doc.contents;
    if (contents === null || (isScalar(contents) && contents.value === null)) {
      branches.push({ kind: "map", items: [...commentItems(doc, "commentBefore"), ...commentItems(doc, "comment")] });
      return;
    }
    if (!isMap(contents)) throw new MalformedError(`${where} is not a mapping`);
    // The `sops` key is taken out of every document (its metadata is the first document's);
    // comments attached to it stay in the document as a trailing comment.
    const idx = contents.items.findIndex((p) => keyText(p.key) === "sops");
    if (idx !== -1) {
      const pair = contents.items[idx]!;
      if (i === 0) metadata = pair.value ? (pair.value as Node).toJSON() : undefined;
      const kept = [(pair.key as CommentHolder | null)?.commentBefore, contents.comment].filter((c): c is string => typeof c === "string" && c !== "");
      contents.items.splice(idx, 1);
      contents.comment = kept.length > 0 ? kept.join("\n") : contents.comment;
    }
    branches.push(
      mapOf(contents, where, { before: commentItems(doc, "commentBefore"), after: commentItems(doc, "comment") }),
    );
  });
  return {
    branches,
    metadata,
    emit() {
      const parts = list.map((doc, i) => {
        let out = doc.toString({ lineWidth: 0 });
        if (i > 0 && !out.startsWith("---")) out = "---\n" + out;
        return out;
      });
      return Buffer.from(parts.join(""), "utf8");
    },
  };
}

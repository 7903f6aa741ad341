/**
 * The INI store, as sops' (`stores/ini`, on go-ini v1 with
 * AllowNonUniqueSections): each section a branch of string values, a comment
 * before a key belongs to that key (and follows it in the tree), the metadata
 * in a `[sops]` section with flattened keys and `\n` escaped. Emitted the way
 * go-ini writes a file (aligned ` = `, a blank line between sections,
 * values quoted when they need it).
 */
import { scalarText, str, type SopsScalar } from "../cipher.js";
import { unflatten } from "../metadata.js";
import type { TComment, TMap } from "../tree.js";
import { MalformedError, type LoadedFile } from "./common.js";

interface IniKey {
  name: string;
  value: SopsScalar;
  comment: string;
}

interface IniSection {
  name: string;
  comment: string;
  keys: IniKey[];
}

/** sops' stripCommentChar. */
function stripCommentChar(c: string): string {
  if (c.startsWith(";")) return c.replace(/^[; ]+/, "");
  if (c.startsWith("#")) return c.replace(/^[# ]+/, "");
  return c;
}

/** go-ini's readValue with its default options. Returns the value and any inline comment. */
function readValue(raw: string): { value: string; comment: string } {
  const line = raw.replace(/^\s+/, "");
  if (line === "") return { value: "", comment: "" };
  let quote = "";
  if (line.length > 3 && line.startsWith('"""')) quote = '"""';
  else if (line.startsWith("`")) quote = "`";
  if (quote) {
    const pos = line.slice(quote.length).lastIndexOf(quote);
    if (pos === -1) throw new MalformedError("a multi-line INI value is not supported");
    return { value: line.slice(quote.length, quote.length + pos), comment: "" };
  }
  let v = line.trim();
  if (v.endsWith("\\")) throw new MalformedError("INI continuation lines are not supported");
  let comment = "";
  const i = v.search(/[#;]/);
  if (i > -1) {
    comment = v.slice(i);
    v = v.slice(0, i).trim();
  }
  if (v.length >= 2 && ((v.startsWith("'") && v.endsWith("'")) || (v.startsWith('"') && v.endsWith('"')))) v = v.slice(1, -1);
  return { value: v, comment };
}

/** go-ini's readKeyName (delimiters `=` and `:`). */
function readKeyName(line: string): { name: string; rest: string } {
  let quote = "";
  if (line.startsWith('"""')) quote = '"""';
  else if (line.startsWith("`")) quote = "`";
  else if (line.startsWith('"')) quote = '"';
  let name: string;
  let after: string;
  if (quote) {
    const end = line.indexOf(quote, quote.length);
    if (end === -1) throw new MalformedError("an INI key has no closing quote");
    name = line.slice(quote.length, end);
    after = line.slice(end + quote.length);
    const d = after.search(/[=:]/);
    if (d === -1) throw new MalformedError("an INI line has no '='");
    return { name, rest: after.slice(d + 1) };
  }
  const d = line.search(/[=:]/);
  if (d === -1) throw new MalformedError("an INI line has no '='");
  name = line.slice(0, d).trim();
  if (name === "") throw new MalformedError("an INI key is empty");
  return { name, rest: line.slice(d + 1) };
}

export function parseIni(text: string): IniSection[] {
  const sections: IniSection[] = [{ name: "DEFAULT", comment: "", keys: [] }];
  let cur = sections[0]!;
  let comment: string[] = [];
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  for (const rawLine of body.split("\n")) {
    const line = rawLine.replace(/^\s+/, "").replace(/\r$/, "");
    if (line === "") continue;
    if (line.startsWith("#") || line.startsWith(";")) {
      comment.push(line.trimEnd());
      continue;
    }
    if (line.startsWith("[")) {
      const close = line.lastIndexOf("]");
      if (close === -1) throw new MalformedError("an INI section header is not closed");
      const trailing = line.slice(close + 1).trim();
      if (trailing.startsWith("#") || trailing.startsWith(";")) comment.push(trailing);
      cur = { name: line.slice(1, close), comment: comment.join("\n").trim(), keys: [] };
      sections.push(cur);
      comment = [];
      continue;
    }
    const { name, rest } = readKeyName(line);
    const { value, comment: inline } = readValue(rest);
    if (inline) comment.push(inline);
    const existing = cur.keys.find((k) => k.name === name);
    const keyComment = comment.join("\n").trim();
    if (existing) {
      existing.value = str(value);
      existing.comment = keyComment;
    } else {
      cur.keys.push({ name, value: str(value), comment: keyComment });
    }
    comment = [];
  }
  return sections;
}

/** go-ini's writeToBuffer with PrettyFormat, as sops' encodeTree sets the file up. */
export function writeIni(sections: readonly IniSection[]): string {
  let out = "";
  const commentLines = (c: string, section: boolean): string =>
    c
      .split("\n")
      .map((l) => {
        if (l === "") return "; ";
        if (l[0] !== "#" && l[0] !== ";") return "; " + (section ? l : l.trim());
        return l[0] + " " + l.slice(1).trim();
      })
      .map((l) => l + "\n")
      .join("");
  sections.forEach((sec, i) => {
    if (sec.comment !== "") out += commentLines(sec.comment, true);
    if (i > 0 || sec.name.toUpperCase() !== "DEFAULT") out += `[${sec.name}]\n`;
    else if (sec.keys.length === 0) return;
    const displayName = (n: string): string => (n.includes('"') || /[=:]/.test(n) ? "`" + n + "`" : n.includes("`") ? '"""' + n + '"""' : n);
    let align = 0;
    for (const k of sec.keys) {
      let len = k.name.length;
      if (k.name.includes('"') || /[=:]/.test(k.name)) len += 2;
      else if (k.name.includes("`")) len += 6;
      align = Math.max(align, len);
    }
    for (const k of sec.keys) {
      if (k.comment !== "") out += commentLines(k.comment, false);
      const name = displayName(k.name);
      let val = scalarText(k.value);
      if (/[\n`]/.test(val)) val = '"""' + val + '"""';
      else if (/[#;]/.test(val)) val = "`" + val + "`";
      else if (val.trim().length !== val.length) val = '"' + val + '"';
      out += name + " ".repeat(Math.max(0, align - name.length)) + " = " + val + "\n";
    }
    if (i < sections.length - 1) out += "\n";
  });
  return out;
}

export function loadIni(text: string): LoadedFile {
  const parsed = parseIni(text);
  const sopsIdx = parsed.findIndex((s) => s.name === "sops");
  let metadata: unknown;
  if (sopsIdx !== -1) {
    const s = parsed[sopsIdx]!;
    metadata = unflatten(s.keys.map((k) => [k.name, scalarText(k.value).replace(/\\n/g, "\n")]));
    parsed.splice(sopsIdx, 1);
  }
  const root: TMap = { kind: "map", items: [] };
  for (const sec of parsed) {
    const branch: TMap = { kind: "map", items: [] };
    // sops keeps comments with their comment character stripped, and writes them back so.
    sec.comment = stripCommentChar(sec.comment);
    for (const key of sec.keys) key.comment = stripCommentChar(key.comment);
    if (sec.comment !== "") {
      const c: TComment = {
        kind: "comment",
        text: sec.comment,
        set: (t) => {
          sec.comment = t;
        },
      };
      branch.items.push(c);
    }
    for (const key of sec.keys) {
      branch.items.push({
        kind: "entry",
        key: key.name,
        value: {
          kind: "leaf",
          value: key.value,
          set: (v) => {
            key.value = v;
          },
        },
      });
      if (key.comment !== "") {
        branch.items.push({
          kind: "comment",
          text: key.comment,
          set: (t) => {
            key.comment = t;
          },
        });
      }
    }
    root.items.push({ kind: "entry", key: sec.name, value: branch });
  }
  return {
    branches: [root],
    metadata,
    emit: () => Buffer.from(writeIni(parsed), "utf8"),
  };
}

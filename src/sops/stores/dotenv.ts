/**
 * The dotenv store, exactly as sops' (`stores/dotenv`): one `KEY=value` per
 * line split at the first `=`, `\n` in a value stands for a newline, `#`
 * starts a comment line, empty lines are dropped; the metadata is flattened
 * into `sops_…` keys. Emitted as sops -d prints it.
 */
import { scalarText, str } from "../cipher.js";
import type { TComment, TLeaf, TMap } from "../tree.js";
import { MalformedError, type LoadedFile } from "./common.js";
import { unflatten } from "../metadata.js";
import type { SopsScalar } from "../cipher.js";

type Line = { comment: string } | { key: string; value: SopsScalar };

export function dotenvLines(text: string): Line[] {
  const lines: Line[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      lines.push({ comment: line.slice(1) });
      continue;
    }
    const pos = line.indexOf("=");
    if (pos === -1) throw new MalformedError(`line ${i + 1} is not KEY=value`);
    lines.push({ key: line.slice(0, pos), value: str(line.slice(pos + 1).replace(/\\n/g, "\n")) });
  }
  return lines;
}

export function loadDotenv(text: string): LoadedFile {
  const all = dotenvLines(text);
  const meta: Array<[string, string]> = [];
  const lines: Line[] = [];
  for (const l of all) {
    if ("key" in l && l.key.startsWith("sops_")) meta.push([l.key.slice("sops_".length), l.value.t === "str" ? l.value.v.toString("utf8") : ""]);
    else lines.push(l);
  }
  const branch: TMap = {
    kind: "map",
    items: lines.map((l) => {
      if ("comment" in l) {
        const c: TComment = {
          kind: "comment",
          text: l.comment,
          set: (t) => {
            l.comment = t;
            c.text = t;
          },
        };
        return c;
      }
      const leaf: TLeaf = {
        kind: "leaf",
        value: l.value,
        set: (v) => {
          l.value = v;
        },
      };
      return { kind: "entry" as const, key: l.key, value: leaf };
    }),
  };
  return {
    branches: [branch],
    metadata: meta.length > 0 ? unflatten(meta) : undefined,
    emit() {
      let out = "";
      for (const l of lines) {
        if ("comment" in l) out += `#${l.comment}\n`;
        else {
          const v = l.value.t === "str" ? l.value.v.toString("utf8").replace(/\n/g, "\\n") : scalarText(l.value);
          out += `${l.key}=${v}\n`;
        }
      }
      return Buffer.from(out, "utf8");
    },
  };
}

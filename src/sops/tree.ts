/**
 * The tree every store (YAML, JSON, dotenv, INI, binary) is read into, and
 * the walk sops does over it: which values are encrypted (the
 * `*_suffix`/`*_regex`/`*_comment_regex` rules), their decryption with the
 * key path as additional data, and the MAC (SHA-512 over the plaintext values
 * in document order, only the encrypted ones with `mac_only_encrypted`).
 * Mirrors `sops.Tree.Decrypt` and `walkBranch`/`walkSlice` of getsops/sops.
 */
import { createHash } from "node:crypto";
import { decryptValue, looksEncrypted, toBytes, ValueDecryptError, type SopsScalar } from "./cipher.js";

/** A comment line. `set` replaces its text (with the decrypted comment). */
export interface TComment {
  kind: "comment";
  text: string;
  set(text: string): void;
}

/** A value. `value` null is a null (never walked, as in sops). `set` writes the decrypted value back. */
export interface TLeaf {
  kind: "leaf";
  value: SopsScalar | null;
  set(value: SopsScalar): void;
}

export interface TMap {
  kind: "map";
  items: Array<TComment | { kind: "entry"; key: string; value: TNode }>;
}

export interface TSeq {
  kind: "seq";
  items: Array<TComment | TNode>;
}

export type TNode = TLeaf | TMap | TSeq;

/** The encryption rules of a file's metadata (at most one is set; none means `unencrypted_suffix: _unencrypted`). */
export interface CryptRules {
  unencryptedSuffix?: string;
  encryptedSuffix?: string;
  unencryptedRegex?: RegExp;
  encryptedRegex?: RegExp;
  unencryptedCommentRegex?: RegExp;
  encryptedCommentRegex?: RegExp;
  macOnlyEncrypted: boolean;
}

/** sops' MACOnlyEncryptedInitialization: sha256("sops"), hashed first when `mac_only_encrypted` is set. */
const MAC_ONLY_ENCRYPTED_INIT = Buffer.from("8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69", "hex");

/** sops' `Tree.shouldBeEncrypted`. */
export function shouldBeEncrypted(rules: CryptRules, path: readonly string[], stack: readonly string[][], isComment: boolean): boolean {
  let encrypted = true;
  if (rules.unencryptedSuffix) {
    if (path.some((p) => p.endsWith(rules.unencryptedSuffix!))) encrypted = false;
  }
  if (rules.encryptedSuffix) {
    encrypted = path.some((p) => p.endsWith(rules.encryptedSuffix!));
  }
  if (rules.unencryptedRegex) {
    if (path.some((p) => rules.unencryptedRegex!.test(p))) encrypted = false;
  }
  if (rules.encryptedRegex) {
    encrypted = path.some((p) => rules.encryptedRegex!.test(p));
  }
  if (rules.unencryptedCommentRegex) {
    if (stack.some((cs) => cs.some((c) => rules.unencryptedCommentRegex!.test(c)))) encrypted = false;
  }
  if (rules.encryptedCommentRegex) {
    encrypted = false;
    const last = stack.length - 1;
    const lastLen = stack[last]?.length ?? 0;
    outer: for (let i = 0; i < stack.length; i++) {
      const cs = stack[i]!;
      for (let j = 0; j < cs.length; j++) {
        // The comment line that matches is not itself encrypted, only what follows it.
        if (isComment && i === last && j === lastLen - 1) continue;
        if (rules.encryptedCommentRegex.test(cs[j]!)) {
          encrypted = true;
          break outer;
        }
      }
    }
  }
  return encrypted;
}

type Visit = (node: TLeaf | TComment, path: string[], stack: string[][]) => void;

function walkValue(node: TNode | TComment, path: string[], stack: string[][], visit: Visit): void {
  switch (node.kind) {
    case "leaf":
      if (node.value !== null) visit(node, path, stack);
      return;
    case "comment":
      visit(node, path, stack);
      return;
    case "map":
      walkMap(node, path, stack, visit);
      return;
    case "seq":
      walkSeq(node, path, stack, visit);
      return;
  }
}

function walkMap(map: TMap, path: string[], outer: string[][], visit: Visit): void {
  const stack = [...outer, []];
  const top = stack.length - 1;
  for (const item of map.items) {
    if (item.kind === "comment") {
      stack[top]!.push(item.text);
      visit(item, path, stack);
      continue;
    }
    walkValue(item.value, [...path, item.key], stack, visit);
    stack[top] = [];
  }
}

function walkSeq(seq: TSeq, path: string[], outer: string[][], visit: Visit): void {
  const stack = [...outer, []];
  const top = stack.length - 1;
  for (const item of seq.items) {
    const isComment = item.kind === "comment";
    if (isComment) stack[top]!.push(item.text);
    walkValue(item, path, stack, visit);
    if (!isComment) stack[top] = [];
  }
}

/** Where a value failed to decrypt: the key path only, never the value. */
export class TreeDecryptError extends Error {
  constructor(
    readonly keyPath: string,
    cause: unknown,
  ) {
    super(`the value at ${keyPath || "(root)"} does not decrypt: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/**
 * Decrypts every encrypted value and comment of the branches in place
 * (through their `set`) and returns the MAC sops computes over them
 * (uppercase hex SHA-512).
 */
export function decryptTree(branches: readonly TMap[], dataKey: Buffer, rules: CryptRules): string {
  const hash = createHash("sha512");
  if (rules.macOnlyEncrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT);
  const visit: Visit = (node, path, stack) => {
    const isComment = node.kind === "comment";
    const encrypted = shouldBeEncrypted(rules, path, stack, isComment);
    const ad = path.join(":") + ":";
    if (node.kind === "comment") {
      if (encrypted && looksEncrypted(node.text)) {
        try {
          const v = decryptValue(node.text, dataKey, ad);
          node.set(v.t === "comment" ? v.v : v.t === "str" ? v.v.toString("utf8") : String(v.v));
        } catch {
          // sops: "assume the comment was not encrypted in the first place"
        }
      }
      return;
    }
    let value = node.value!;
    if (encrypted) {
      if (value.t !== "str") {
        throw new TreeDecryptError(path.join(":"), new ValueDecryptError(`expected an encrypted value (a string), found a ${value.t}`));
      }
      let plain;
      try {
        plain = decryptValue(value.v.toString("utf8"), dataKey, ad);
      } catch (err) {
        throw new TreeDecryptError(path.join(":"), err);
      }
      if (plain.t === "comment") {
        throw new TreeDecryptError(path.join(":"), new ValueDecryptError("a value is stored with type comment"));
      }
      value = plain;
      node.set(value);
    }
    if (!rules.macOnlyEncrypted || encrypted) hash.update(toBytes(value));
  };
  for (const branch of branches) walkMap(branch, [], [], visit);
  return hash.digest("hex").toUpperCase();
}

/**
 * Compiles a Go (RE2) regular expression from the metadata into a JS one.
 * Leading inline flags `(?i)`, `(?s)`, `(?m)` become JS flags; `regexp.Match`
 * is unanchored, like `RegExp.test`.
 */
export function goRegex(source: string): RegExp {
  let flags = "";
  let body = source;
  const m = /^\(\?([ims]+)\)/.exec(body);
  if (m) {
    flags = [...new Set(m[1]!.split(""))].join("");
    body = body.slice(m[0].length);
  }
  body = body.replace(/\\z/g, "$(?![\\s\\S])").replace(/\\A/g, "^");
  return new RegExp(body, flags);
}

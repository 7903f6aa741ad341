/**
 * The value cipher of SOPS: AES-256-GCM over one value, the value's key path
 * (`a:b:c:`) as additional data, stored as
 * `ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<type>]`. Also the
 * canonical byte form of a value the MAC hashes (sops' `ToBytes`).
 */
import { createDecipheriv } from "node:crypto";

/** A value of a SOPS tree, typed as sops types it (Go's string/int/float64/bool/time). */
export type SopsScalar =
  | { t: "str"; v: Buffer }
  | { t: "int"; v: bigint }
  | { t: "float"; v: number }
  | { t: "bool"; v: boolean }
  | { t: "time"; v: string };

const ENC_RE = /^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]/s;

/** Raised for a value that does not decrypt; never carries the value. */
export class ValueDecryptError extends Error {}

export function looksEncrypted(value: string): boolean {
  return value.startsWith("ENC[AES256_GCM,");
}

function b64(text: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new ValueDecryptError(`the ${what} is not base64`);
  return Buffer.from(text, "base64");
}

/**
 * Decrypts one `ENC[…]` value. An empty string decrypts to an empty string,
 * as in sops. Returns the plaintext bytes and the stored type.
 */
export function decryptRaw(ciphertext: string, key: Buffer, additionalData: string): { plain: Buffer; type: string } {
  if (ciphertext === "") return { plain: Buffer.alloc(0), type: "str" };
  const m = ENC_RE.exec(ciphertext);
  if (!m) throw new ValueDecryptError("the value does not match the sops data format ENC[AES256_GCM,…]");
  const data = b64(m[1]!, "data");
  const iv = b64(m[2]!, "iv");
  const tag = b64(m[3]!, "tag");
  if (iv.length === 0) throw new ValueDecryptError("the iv is empty");
  if (tag.length !== 16) throw new ValueDecryptError("the tag is not 16 bytes");
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: 16 });
    decipher.setAAD(Buffer.from(additionalData, "utf8"));
    decipher.setAuthTag(tag);
    const plain = Buffer.concat([decipher.update(data), decipher.final()]);
    return { plain, type: m[4]! };
  } catch {
    throw new ValueDecryptError("AES-GCM authentication failed (wrong data key, or the value or its key path was changed)");
  }
}

/** Go's strconv.ParseBool. */
function parseGoBool(text: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  throw new ValueDecryptError("a value of type bool does not parse");
}

/** Go's strconv.ParseFloat for the forms sops writes (FormatFloat 'f', and inf/nan). */
export function parseGoFloat(text: string): number {
  const t = text.replace(/_/g, "");
  if (/^[+-]?(inf|infinity)$/i.test(t)) return t.startsWith("-") ? -Infinity : Infinity;
  if (/^nan$/i.test(t)) return NaN;
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number(t);
  if (/^[+-]?0[xX]/.test(t)) {
    const n = Number(t.replace(/^[+-]/, ""));
    if (!Number.isNaN(n)) return t.startsWith("-") ? -n : n;
  }
  throw new ValueDecryptError("a value of type float does not parse");
}

/** Decrypts one value and types it the way sops' cipher does. A comment comes back as a string. */
export function decryptValue(ciphertext: string, key: Buffer, additionalData: string): SopsScalar | { t: "comment"; v: string } {
  const { plain, type } = decryptRaw(ciphertext, key, additionalData);
  const text = plain.toString("utf8");
  switch (type) {
    case "str":
    case "bytes":
      return { t: "str", v: plain };
    case "int":
      if (!/^[+-]?\d+$/.test(text)) throw new ValueDecryptError("a value of type int does not parse");
      return { t: "int", v: BigInt(text) };
    case "float":
      return { t: "float", v: parseGoFloat(text) };
    case "bool":
      return { t: "bool", v: parseGoBool(text) };
    case "time":
      return { t: "time", v: text };
    case "comment":
      return { t: "comment", v: text };
    default:
      throw new ValueDecryptError("unknown value type");
  }
}

/**
 * Go's strconv.FormatFloat(f, 'f', -1, 64): the shortest decimal that
 * round-trips, never in exponent form.
 */
export function formatFloatF(f: number): string {
  if (Number.isNaN(f)) return "NaN";
  if (f === Infinity) return "+Inf";
  if (f === -Infinity) return "-Inf";
  const s = Object.is(f, -0) ? "-0" : String(f);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, int, frac = "", expText] = m;
  const digits = int! + frac;
  const point = int!.length + Number(expText);
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${"0".repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** sops' ToBytes: what the MAC hashes for a value. */
export function toBytes(value: SopsScalar): Buffer {
  switch (value.t) {
    case "str":
      return value.v;
    case "int":
      return Buffer.from(value.v.toString(), "utf8");
    case "float":
      return Buffer.from(formatFloatF(value.v), "utf8");
    case "bool":
      return Buffer.from(value.v ? "True" : "False", "utf8");
    case "time":
      return Buffer.from(value.v, "utf8");
  }
}

export function str(text: string): SopsScalar {
  return { t: "str", v: Buffer.from(text, "utf8") };
}

/** A scalar as the flat formats (dotenv, INI) write it: strings as UTF-8, floats as Go's %f would. */
export function scalarText(v: SopsScalar): string {
  switch (v.t) {
    case "str":
      return v.v.toString("utf8");
    case "int":
      return v.v.toString();
    case "float":
      return formatFloatF(v.v);
    case "bool":
      return v.v ? "true" : "false";
    case "time":
      return v.v;
  }
}

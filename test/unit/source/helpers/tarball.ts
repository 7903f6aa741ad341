import { gzipSync } from "node:zlib";

/**
 * Writes tar archives byte by byte, because node-tar's packer normalizes
 * paths and refuses to produce the malicious entries the unpacker must refuse.
 */
export interface RawEntry {
  path: string;
  /** ustar typeflag: "0" file, "1" hardlink, "2" symlink, "3" char device, "4" block device, "5" directory, "6" FIFO, or any other byte. */
  type?: string;
  linkpath?: string;
  content?: string | Buffer;
  /** Size written into the header; defaults to the content length. */
  declaredSize?: number;
  mode?: number;
}

const BLOCK = 512;

function writeString(header: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, "utf8");
  if (bytes.length > length) throw new Error(`tar helper: "${value}" does not fit in ${length} bytes`);
  bytes.copy(header, offset);
}

function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  writeString(header, offset, length, value.toString(8).padStart(length - 1, "0") + "\0");
}

export function tarHeader(entry: RawEntry): Buffer {
  const content = typeof entry.content === "string" ? Buffer.from(entry.content) : (entry.content ?? Buffer.alloc(0));
  const type = entry.type ?? "0";
  const header = Buffer.alloc(BLOCK);
  writeString(header, 0, 100, entry.path);
  writeOctal(header, 100, 8, entry.mode ?? (type === "5" ? 0o755 : 0o644));
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, entry.declaredSize ?? content.length);
  writeOctal(header, 136, 12, 1_700_000_000);
  header.fill(" ", 148, 156);
  header.write(type, 156, "latin1");
  writeString(header, 157, 100, entry.linkpath ?? "");
  writeString(header, 257, 6, "ustar\0");
  writeString(header, 263, 2, "00");
  let sum = 0;
  for (const byte of header) sum += byte;
  writeString(header, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return header;
}

function pad(data: Buffer): Buffer {
  const remainder = data.length % BLOCK;
  return remainder === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - remainder)]);
}

export function tar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    parts.push(tarHeader(entry));
    const content = typeof entry.content === "string" ? Buffer.from(entry.content) : entry.content;
    if (content && content.length > 0) parts.push(pad(content));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

export function tarGz(entries: RawEntry[]): Buffer {
  return gzipSync(tar(entries));
}

/** A PAX extended header ('x') carrying `records` for the next entry, for paths and link targets over 100 bytes. */
export function paxHeader(records: Record<string, string>): Buffer {
  let body = "";
  for (const [key, value] of Object.entries(records)) {
    const line = ` ${key}=${value}\n`;
    let length = line.length + String(line.length).length;
    if (String(length).length !== String(line.length).length) length += 1;
    body += `${length}${line}`;
  }
  const content = Buffer.from(body);
  return Buffer.concat([tarHeader({ path: "PaxHeader", type: "x", content }), pad(content)]);
}

/** Like {@link tar}, with a PAX header before every entry whose path or link target is too long for ustar. */
export function paxTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const records: Record<string, string> = {};
    let header = entry;
    if (Buffer.byteLength(entry.path) > 99) {
      records["path"] = entry.path;
      header = { ...header, path: "long-path" };
    }
    if (entry.linkpath && Buffer.byteLength(entry.linkpath) > 99) {
      records["linkpath"] = entry.linkpath;
      header = { ...header, linkpath: "long-link" };
    }
    if (Object.keys(records).length > 0) parts.push(paxHeader(records));
    parts.push(tar([header]).subarray(0, -1024));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/**
 * What both rollback stores share: owner and digest checks, the entry file
 * name, digest verification and retention order.
 */
import { ArtifactError } from "../errors.js";
import { computeDigest, DIGEST_ALGORITHMS, parseDigest, shortDigest, type ParsedDigest } from "../source/digest.js";
import { RollbackStoreError, type SnapshotOwner } from "./store.js";

/** How many digests each StageSet stage keeps by default (the newest, by write time). */
export const DEFAULT_RETAIN = 5;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `<algorithm>-<hex>.tar.gz`: an entry's file name (filesystem) or last key segment (S3). */
export const ENTRY_NAME = new RegExp(`^(${DIGEST_ALGORITHMS.join("|")})-([0-9a-f]+)\\.tar\\.gz$`);

/**
 * The owner's path segments, each checked to be a DNS-1123 name (namespace and
 * stage: labels; StageSet: subdomain), so none can be `..`, contain a slash or
 * be empty. Anything else is refused before it becomes part of a path or key.
 */
export function ownerSegments(owner: SnapshotOwner): [string, string, string] {
  const checks: Array<[string, string, RegExp, number]> = [
    ["namespace", owner.namespace, DNS1123_LABEL, 63],
    ["StageSet name", owner.stageSet, DNS1123_SUBDOMAIN, 253],
    ["stage name", owner.stage, DNS1123_LABEL, 63],
  ];
  for (const [what, value, pattern, max] of checks) {
    if (typeof value !== "string" || value.length > max || !pattern.test(value)) {
      throw new RollbackStoreError(`rollback store: ${what} ${JSON.stringify(value)} is not a DNS-1123 name`);
    }
  }
  return [owner.namespace, owner.stageSet, owner.stage];
}

export function describeOwner(owner: SnapshotOwner): string {
  return `${owner.namespace}/${owner.stageSet} stage ${owner.stage}`;
}

/** Parses `<algorithm>:<hex>`; a malformed digest is a RollbackStoreError. */
export function checkDigest(digest: string): ParsedDigest {
  try {
    return parseDigest(digest);
  } catch (err) {
    if (err instanceof ArtifactError) throw new RollbackStoreError(`rollback store: ${err.message}`);
    throw err;
  }
}

export function entryName(parsed: ParsedDigest): string {
  return `${parsed.algorithm}-${parsed.hex}.tar.gz`;
}

export function short(parsed: ParsedDigest): string {
  return shortDigest(parsed.algorithm, parsed.hex);
}

/** Whether `data` hashes to `parsed`. */
export function verifies(parsed: ParsedDigest, data: Uint8Array): boolean {
  return computeDigest(parsed.algorithm, data) === `${parsed.algorithm}:${parsed.hex}`;
}

/** The tarball given to put() must match its digest: the store never holds an entry that cannot verify. */
export function checkTarball(parsed: ParsedDigest, tarball: Buffer, where: string): void {
  if (!verifies(parsed, tarball)) {
    throw new RollbackStoreError(`${where}: the tarball does not match digest ${short(parsed)}; not stored`);
  }
}

export interface RetentionCandidate {
  name: string;
  /** Write time, milliseconds since the epoch. */
  time: number;
}

/**
 * The entries to delete so that `retain` remain: the oldest by write time
 * (ties by name, so every replica picks the same), never `keep`.
 */
export function beyondRetention(entries: RetentionCandidate[], retain: number, keep: string): string[] {
  const sorted = [...entries].sort((a, b) => b.time - a.time || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const kept = new Set<string>([keep]);
  const remove: string[] = [];
  for (const entry of sorted) {
    if (kept.has(entry.name)) continue;
    if (kept.size < retain) kept.add(entry.name);
    else remove.push(entry.name);
  }
  return remove;
}

/** An error's name and message for a store message (never a stack). */
export function describeCause(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

export function checkRetain(retain: number | undefined): number {
  const value = retain ?? DEFAULT_RETAIN;
  if (!Number.isInteger(value) || value < 1) throw new RollbackStoreError(`rollback store: retention must be a positive integer, got ${value}`);
  return value;
}

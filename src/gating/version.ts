/**
 * The version being deployed (`spec.version`): read from the StageSet, from
 * an object a stage renders, or from a file in a stage's artifact, and parsed
 * as semver.
 *
 * Rules from the "Versioned migrations" page: the resolved value is trimmed
 * and parsed as semver, a leading `v` is accepted; a missing
 * stage/object/file, an empty value or an unparseable one fails terminally
 * with `InvalidVersion` ("a half-versioned system is worse than an
 * unversioned one"). `fromObject` without `fieldPath` reads the
 * `app.kubernetes.io/version` label; `fieldPath` is kubectl-style JSONPath
 * that must resolve to the bare version; `apiVersion` narrows an ambiguous
 * kind and name. `fromArtifact.path` is relative to the artifact root,
 * cleaned, without a leading `./`.
 *
 * Pure apart from readArtifactFile: what the stage renders and what its
 * artifact holds come in through VersionInputs, from the controller.
 */
import { constants } from "node:fs";
import { lstat, open, realpath } from "node:fs/promises";
import { join, posix, sep } from "node:path";
import semver from "semver";
import type { KubeObject, VersionSpec } from "../api/types.js";
import { Reasons, StageSetError } from "../errors.js";
import { evaluateFieldPath, FieldPathSyntaxError } from "./jsonpath.js";

/** The label read when `fromObject` has no `fieldPath` (Kubernetes' recommended label). */
export const VERSION_LABEL = "app.kubernetes.io/version";

/** The most a version file may hold: a version is a few dozen bytes. */
export const MAX_VERSION_FILE_BYTES = 4096;

/** Longest excerpt of an offending value shown in a message. */
const SHOWN_VALUE_CHARS = 64;
/** Most objects listed when the one looked for is not there. */
const LISTED_OBJECTS = 10;

/**
 * `spec.version` cannot be resolved to a semantic version. Terminal: the same
 * inputs give the same answer, so only a change of the StageSet or its
 * sources heals it. Reason `InvalidVersion`.
 */
export class InvalidVersionError extends StageSetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Reasons.InvalidVersion, message, { ...options, terminal: true });
  }
}

/** What resolveVersion needs from the run: a stage's rendered objects and files of its artifact. */
export interface VersionInputs {
  /** The objects the stage renders (the same build that is applied). */
  objectsOf(stage: string): Promise<readonly KubeObject[]>;
  /**
   * The text of the file at `path` (already cleaned, relative to the
   * artifact root) in the stage's artifact; undefined when there is no such
   * file. See readArtifactFile.
   */
  readArtifactFile(stage: string, path: string): Promise<string | undefined>;
}

export interface ResolvedVersion {
  /** Normalised semver: no leading `v`, no build metadata, e.g. `2.1.0` or `2.1.0-rc.1`. */
  version: string;
  /** Where it was read, for messages and events, e.g. `label app.kubernetes.io/version of apps/v1 Deployment web in stage "app"`. */
  origin: string;
}

/**
 * The normalised form of an exact semantic version, or undefined when `raw`
 * is not one. Surrounding whitespace and one leading `v`/`V` are accepted;
 * nothing is coerced (`1.2` and `1.2.x` are not versions). Build metadata
 * (`+build.5`) is accepted and dropped: it takes no part in ordering.
 */
export function normalizeVersion(raw: string): string | undefined {
  const stripped = raw.trim().replace(/^[vV]/, "");
  if (!/^\d/.test(stripped)) return undefined;
  return semver.valid(stripped) ?? undefined;
}

/**
 * Parses `raw` (trimmed, a leading `v` accepted) as an exact semantic version
 * and returns its normalised form (see normalizeVersion).
 *
 * `origin` names where the value came from (`spec.version.value`, or a
 * description of the label, field or file) and starts every message. Throws
 * InvalidVersionError when the value is empty or not a semantic version; the
 * message quotes (at most 64 characters of) the value and gives the fix.
 */
export function parseVersion(raw: string, origin: string): string {
  return parseVersionFrom(raw, origin, true);
}

function parseVersionFrom(raw: string, origin: string, showValue: boolean): string {
  if (raw.trim() === "") {
    throw new InvalidVersionError(`${origin} is empty; set it to a semantic version such as 2.1.0 (MAJOR.MINOR.PATCH, a leading v is accepted)`);
  }
  const version = normalizeVersion(raw);
  if (version === undefined) {
    const shown = showValue ? `${shorten(raw.trim())} ` : "the value (not shown: it comes from a Secret) ";
    throw new InvalidVersionError(`${origin}: ${shown}is not a semantic version (MAJOR.MINOR.PATCH, a leading v is accepted); set it to e.g. 2.1.0`);
  }
  return version;
}

/**
 * Resolves `spec.version` to the version being deployed.
 *
 * - `value`: parsed as is.
 * - `fromObject`: the one object of the stage's render with that kind and
 *   name (and apiVersion, when set); its `app.kubernetes.io/version` label,
 *   or the single string or number `fieldPath` selects.
 * - `fromArtifact`: the file at the cleaned `path` of the stage's artifact,
 *   its whole content trimmed.
 *
 * Returns the normalised version and a description of where it was read.
 * Throws InvalidVersionError (terminal) for: not exactly one source; no
 * matching object, or several without `apiVersion` to tell them apart; a
 * missing label; a `fieldPath` that is malformed, selects nothing, several
 * values or an object; a `path` that is absolute or climbs out of the
 * artifact; a missing file; an empty or unparseable value. Errors from
 * `read` (a failed build, a failed fetch) pass through unchanged.
 */
export async function resolveVersion(spec: VersionSpec, read: VersionInputs): Promise<ResolvedVersion> {
  const sources = (["value", "fromObject", "fromArtifact"] as const).filter((source) => spec[source] !== undefined);
  if (sources.length !== 1) {
    throw new InvalidVersionError("spec.version: set exactly one of value, fromObject or fromArtifact");
  }
  if (spec.value !== undefined) {
    return { version: parseVersion(spec.value, "spec.version.value"), origin: "spec.version.value" };
  }
  if (spec.fromObject !== undefined) return resolveFromObject(spec.fromObject, read);
  return resolveFromArtifact(spec.fromArtifact!, read);
}

async function resolveFromObject(ref: NonNullable<VersionSpec["fromObject"]>, read: VersionInputs): Promise<ResolvedVersion> {
  const field = "spec.version.fromObject";
  const objects = await read.objectsOf(ref.stage);
  const sameKind = objects.filter((object) => object.kind === ref.kind);
  const named = sameKind.filter((object) => object.metadata?.name === ref.name);
  const matches = ref.apiVersion === undefined ? named : named.filter((object) => object.apiVersion === ref.apiVersion);
  const wanted = `${ref.apiVersion === undefined ? "" : `${ref.apiVersion} `}${ref.kind} named ${JSON.stringify(ref.name)}`;

  if (matches.length === 0) {
    let found: string;
    if (named.length > 0) {
      found = `it renders ${listObjects(named)}; set spec.version.fromObject.apiVersion to ${unique(named.map((o) => o.apiVersion)).join(" or ")}`;
    } else if (sameKind.length > 0) {
      found = `of that kind it renders ${listObjects(sameKind)}; name one of them, or render the object in that stage`;
    } else {
      found = `it renders no ${ref.kind} at all; name an object the stage renders, or the stage that renders it`;
    }
    throw new InvalidVersionError(`${field}: stage ${JSON.stringify(ref.stage)} renders no ${wanted}; ${found}`);
  }
  if (matches.length > 1) {
    const apiVersions = unique(matches.map((o) => o.apiVersion));
    const fix =
      apiVersions.length > 1 && ref.apiVersion === undefined
        ? "set spec.version.fromObject.apiVersion to pick one"
        : "they differ only by namespace, which spec.version.fromObject cannot tell apart; give the one holding the version a name of its own";
    throw new InvalidVersionError(`${field}: stage ${JSON.stringify(ref.stage)} renders ${matches.length} objects that match ${wanted} (${listObjects(matches)}); ${fix}`);
  }

  const object = matches[0]!;
  const where = `${describeObject(object)} in stage ${JSON.stringify(ref.stage)}`;
  const fromSecret = object.kind === "Secret" && object.apiVersion === "v1";
  if (ref.fieldPath === undefined) {
    const origin = `label ${VERSION_LABEL} of ${where}`;
    const value = object.metadata?.labels?.[VERSION_LABEL];
    if (typeof value !== "string") {
      throw new InvalidVersionError(
        `${field}: ${where} has no label ${VERSION_LABEL}; add the label with the version to the object, or set spec.version.fromObject.fieldPath to the field that holds it`,
      );
    }
    return { version: parseVersionFrom(value, `${field} (${origin})`, !fromSecret), origin };
  }

  const fieldPath = ref.fieldPath;
  const shownPath = JSON.stringify(fieldPath);
  let values: unknown[];
  try {
    values = evaluateFieldPath(fieldPath, object);
  } catch (err) {
    if (err instanceof FieldPathSyntaxError) {
      throw new InvalidVersionError(`${field}.fieldPath: ${shownPath} ${err.message}`, { cause: err });
    }
    throw err;
  }
  const origin = `field ${fieldPath.trim()} of ${where}`;
  if (values.length === 0) {
    throw new InvalidVersionError(`${field}.fieldPath: ${shownPath} selects nothing in ${where}; point it at the field that holds the version, e.g. {.data.version}`);
  }
  if (values.length > 1) {
    throw new InvalidVersionError(`${field}.fieldPath: ${shownPath} selects ${values.length} values in ${where}; it must select exactly one, the bare version`);
  }
  const value = values[0];
  if (typeof value === "number") return { version: parseVersionFrom(String(value), `${field} (${origin})`, !fromSecret), origin };
  if (typeof value !== "string") {
    throw new InvalidVersionError(
      `${field}.fieldPath: ${shownPath} selects ${describeValue(value)} in ${where}, not a version string; point it at the field that holds the bare version`,
    );
  }
  return { version: parseVersionFrom(value, `${field} (${origin})`, !fromSecret), origin };
}

async function resolveFromArtifact(ref: NonNullable<VersionSpec["fromArtifact"]>, read: VersionInputs): Promise<ResolvedVersion> {
  const path = cleanArtifactPath(ref.path);
  const origin = `file ${path} in the artifact of stage ${JSON.stringify(ref.stage)}`;
  const content = await read.readArtifactFile(ref.stage, path);
  if (content === undefined) {
    throw new InvalidVersionError(
      `spec.version.fromArtifact.path: the artifact of stage ${JSON.stringify(ref.stage)} has no file ${path}; ship a file there holding the version (e.g. 2.1.0), or fix the path`,
    );
  }
  return { version: parseVersion(content, `spec.version.fromArtifact (${origin})`), origin };
}

/**
 * `spec.version.fromArtifact.path` as a clean path relative to the artifact
 * root: leading `./` removed, `a/../b` folded. Throws InvalidVersionError for
 * an empty path, an absolute one, or one that climbs out of the artifact
 * with `..`.
 */
export function cleanArtifactPath(path: string): string {
  const field = "spec.version.fromArtifact.path";
  if (path.includes("\0")) throw new InvalidVersionError(`${field}: the path holds a NUL character; name the version file, e.g. VERSION`);
  if (path.startsWith("/")) {
    throw new InvalidVersionError(`${field}: ${JSON.stringify(path)} is absolute; give the file's path inside the artifact, e.g. VERSION`);
  }
  const cleaned = posix.normalize(path === "" ? "." : path);
  if (cleaned === ".." || cleaned.startsWith("../")) {
    throw new InvalidVersionError(`${field}: ${JSON.stringify(path)} points outside the artifact; give the file's path inside it, e.g. VERSION`);
  }
  const relative = cleaned.replace(/^(\.\/)+/, "");
  if (relative === "." || relative === "" || relative.endsWith("/")) {
    throw new InvalidVersionError(`${field}: ${JSON.stringify(path)} names a directory, not a file; name the version file, e.g. VERSION`);
  }
  return relative;
}

/**
 * Reads the version file at `path` of the unpacked artifact at `root` — the
 * controller hands this, bound to the stage's artifact, to resolveVersion.
 *
 * Confined to `root` as the build is (docs/architecture.md, "Build
 * confinement"; the same realpath check as src/build/confine.ts): `path` is
 * cleaned by cleanArtifactPath, then resolved with every symbolic link
 * followed, and must land inside the resolved root; the resolved file is
 * opened without following a link again and must be a regular file. At most
 * MAX_VERSION_FILE_BYTES (4 KiB) are read.
 *
 * Returns the file's text, or undefined when there is no file at `path` (a
 * missing file, or a missing directory on the way). Throws
 * InvalidVersionError for a path cleanArtifactPath refuses, a path that
 * leads outside the artifact through a symbolic link (nothing outside is
 * read), a dangling or looping link, something that is not a regular file,
 * a file over 4 KiB ("is not a version file") or one that is not UTF-8 text.
 */
export async function readArtifactFile(root: string, path: string): Promise<string | undefined> {
  const field = "spec.version.fromArtifact.path";
  const relative = cleanArtifactPath(path);
  const realRoot = await realpath(root);
  const full = join(realRoot, relative);
  let real: string;
  try {
    real = await realpath(full);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ELOOP") throw new InvalidVersionError(`${field}: ${relative} is part of a loop of symbolic links in the artifact; point it at the version file`);
    if (code !== "ENOENT" && code !== "ENOTDIR") throw err;
    if (await exists(full)) {
      throw new InvalidVersionError(`${field}: ${relative} is a symbolic link to nothing in the artifact; point it at the version file`);
    }
    return undefined;
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep)) {
    throw new InvalidVersionError(`${field}: ${relative} resolves outside the artifact through a symbolic link; the version file must be inside the artifact`);
  }
  // O_NONBLOCK: a FIFO must not hang the open; O_NOFOLLOW: what was checked is what is opened.
  const handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new InvalidVersionError(`${field}: ${relative} is not a regular file; point it at the version file`);
    const tooBig = (size: number) =>
      new InvalidVersionError(
        `${field}: ${relative} is not a version file (${size} bytes, more than ${MAX_VERSION_FILE_BYTES}); a version file holds one version such as 2.1.0`,
      );
    if (info.size > MAX_VERSION_FILE_BYTES) throw tooBig(info.size);
    const buffer = Buffer.alloc(MAX_VERSION_FILE_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_VERSION_FILE_BYTES) throw tooBig(length);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(0, length));
    } catch {
      throw new InvalidVersionError(`${field}: ${relative} is not UTF-8 text; a version file holds one version such as 2.1.0`);
    }
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

function describeObject(object: KubeObject): string {
  const namespace = object.metadata?.namespace;
  return `${object.apiVersion} ${object.kind} ${namespace ? `${namespace}/` : ""}${object.metadata?.name ?? "(unnamed)"}`;
}

function listObjects(objects: readonly KubeObject[]): string {
  const shown = objects.slice(0, LISTED_OBJECTS).map(describeObject);
  const more = objects.length - shown.length;
  return shown.join(", ") + (more > 0 ? ` and ${more} more` : "");
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

function shorten(text: string): string {
  const chars = [...text];
  return JSON.stringify(chars.length > SHOWN_VALUE_CHARS ? `${chars.slice(0, SHOWN_VALUE_CHARS).join("")}…` : text);
}

import type { Condition, KubeObject, SourceRef } from "../api/types.js";
import { ArtifactError, InvalidSpecError, SourceNotReadyError } from "../errors.js";
import type { Artifact } from "./artifact.js";

/**
 * sourceRef -> artifact. Flux's own source kinds are read directly; any other
 * kind is a producer, found through the ExternalArtifact whose
 * `spec.sourceRef` points back at it. Pure: every read goes through the
 * SourceReader the caller supplies (a watch cache in the controller, direct
 * API reads in the CLI).
 */

export const FLUX_SOURCE_GROUP = "source.toolkit.fluxcd.io";
/** The only version source-controller v1.x serves for all four direct kinds (see .tools/crds/flux). */
export const FLUX_SOURCE_API_VERSION = `${FLUX_SOURCE_GROUP}/v1`;
export const EXTERNAL_ARTIFACT_KIND = "ExternalArtifact";
/** Kinds in FLUX_SOURCE_GROUP that carry `status.artifact` themselves. */
export const DIRECT_SOURCE_KINDS: readonly string[] = [EXTERNAL_ARTIFACT_KIND, "GitRepository", "OCIRepository", "Bucket"];

/** Index key group for an ExternalArtifact whose back-pointer has no apiVersion. */
export const ANY_GROUP = "*";

/** What resolution needs to read; the controller backs it with its informer cache. */
export interface SourceReader {
  get(apiVersion: string, kind: string, namespace: string, name: string): Promise<KubeObject | undefined>;
  /**
   * The ExternalArtifacts indexed under producerKey(group, kind, namespace,
   * name), i.e. those for which producerIndexKeys() returned that key. May be
   * loose: resolution re-checks every candidate.
   */
  producersOf(group: string, kind: string, namespace: string, name: string): KubeObject[] | Promise<KubeObject[]>;
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

export interface ResolveRequest {
  sourceRef: SourceRef;
  /** The StageSet's namespace: the default for sourceRef.namespace. */
  namespace: string;
  /** The stage the reference belongs to, for messages. */
  stage: string;
  /** Path of the reference in the StageSet, e.g. `spec.stages[0].sourceRef`, for messages. */
  field: string;
}

export interface ResolveOptions {
  /** `--no-cross-namespace-refs`: a sourceRef into another namespace is an InvalidSpec. */
  noCrossNamespaceRefs?: boolean;
}

export interface ResolvedSource {
  /** The object the sourceRef names, defaults filled in. */
  ref: ObjectRef;
  /**
   * The key in status.lastAttemptedRevisions/lastAppliedRevisions:
   * `<namespace>/<name>` of the object the user referenced (for a producer,
   * the producer, not its ExternalArtifact), so status reads in the terms of
   * the spec.
   */
  key: string;
  /** The object whose status.artifact was used: `ref` itself, or a producer's ExternalArtifact. */
  artifactFrom: ObjectRef;
  artifact: Artifact;
}

/** The revisions-map key for a source. */
export function sourceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** The producer index key: ExternalArtifacts are indexed under it, producers looked up by it. */
export function producerKey(group: string, kind: string, namespace: string, name: string): string {
  return `${group}/${kind}/${namespace}/${name}`;
}

/**
 * Index keys of an ExternalArtifact, from its `spec.sourceRef` back-pointer.
 *
 * A back-pointer counts only when the producer is in the ExternalArtifact's
 * own namespace (Flux treats an omitted namespace as local). Otherwise a
 * tenant allowed to create ExternalArtifacts in one namespace could claim a
 * producer in another and have its content rolled out in the producer's
 * name. A back-pointer without apiVersion matches the kind in any group
 * (ANY_GROUP), but only when no ExternalArtifact names the group explicitly.
 */
export function producerIndexKeys(externalArtifact: KubeObject): string[] {
  const namespace = externalArtifact.metadata.namespace;
  const back = backPointer(externalArtifact);
  if (!namespace || !back) return [];
  if (back.namespace !== undefined && back.namespace !== "" && back.namespace !== namespace) return [];
  const group = back.apiVersion ? groupOf(back.apiVersion) : ANY_GROUP;
  return [producerKey(group, back.kind, namespace, back.name)];
}

/**
 * Resolves a stage's sourceRef to the artifact to fetch.
 *
 * Throws InvalidSpecError for a reference the controller will never accept
 * as written, SourceNotReadyError while the source is missing, not Ready or
 * without an artifact (the run waits), ArtifactError for an artifact
 * without the fields needed to fetch and verify it.
 */
export async function resolveSource(
  request: ResolveRequest,
  reader: SourceReader,
  options: ResolveOptions = {},
): Promise<ResolvedSource> {
  const ref = normalizeRef(request, options);
  const key = sourceKey(ref.namespace, ref.name);
  if (isDirectKind(ref)) {
    const source = await reader.get(ref.apiVersion, ref.kind, ref.namespace, ref.name);
    if (!source) {
      throw new SourceNotReadyError(`stage "${request.stage}": source ${describe(ref)} not found`);
    }
    const artifact = readyArtifact(source, request.stage, `source ${describe(ref)}`);
    return { ref, key, artifactFrom: ref, artifact };
  }
  const externalArtifact = await findPublishedArtifact(ref, request.stage, reader);
  const artifactFrom = objectRef(externalArtifact);
  const artifact = readyArtifact(
    externalArtifact,
    request.stage,
    `ExternalArtifact ${artifactFrom.namespace}/${artifactFrom.name} (published by ${describe(ref)})`,
  );
  return { ref, key, artifactFrom, artifact };
}

function normalizeRef(request: ResolveRequest, options: ResolveOptions): ObjectRef {
  const { sourceRef, field, stage } = request;
  const kind = sourceRef.kind || EXTERNAL_ARTIFACT_KIND;
  const namespace = sourceRef.namespace || request.namespace;
  if (namespace !== request.namespace && options.noCrossNamespaceRefs) {
    throw new InvalidSpecError(
      `${field}.namespace: stage "${stage}" references ${kind} ${namespace}/${sourceRef.name} in another namespace, ` +
        `but the controller runs with --no-cross-namespace-refs; remove ${field}.namespace ` +
        `and reference a source in namespace "${request.namespace}"`,
    );
  }
  let apiVersion = sourceRef.apiVersion;
  if (apiVersion === undefined || apiVersion === "") {
    if (!DIRECT_SOURCE_KINDS.includes(kind)) {
      throw new InvalidSpecError(
        `${field}.apiVersion: stage "${stage}" references producer kind "${kind}" without an apiVersion; ` +
          `set it to the producer's apiVersion (for example jaas.metio.wtf/v1) so the ExternalArtifact ` +
          `that points back at it can be matched on group, kind and name`,
      );
    }
    apiVersion = FLUX_SOURCE_API_VERSION;
  } else if (!/^([a-z0-9.-]+\/)?[a-z0-9]+$/.test(apiVersion)) {
    throw new InvalidSpecError(
      `${field}.apiVersion: "${apiVersion}" is not an apiVersion; use <group>/<version>, e.g. ${FLUX_SOURCE_API_VERSION}`,
    );
  }
  return { apiVersion, kind, namespace, name: sourceRef.name };
}

function isDirectKind(ref: ObjectRef): boolean {
  return groupOf(ref.apiVersion) === FLUX_SOURCE_GROUP && DIRECT_SOURCE_KINDS.includes(ref.kind);
}

async function findPublishedArtifact(producer: ObjectRef, stage: string, reader: SourceReader): Promise<KubeObject> {
  const group = groupOf(producer.apiVersion);
  const wanted = producerKey(group, producer.kind, producer.namespace, producer.name);
  const loose = producerKey(ANY_GROUP, producer.kind, producer.namespace, producer.name);
  const matching = async (indexGroup: string, key: string): Promise<KubeObject[]> =>
    (await reader.producersOf(indexGroup, producer.kind, producer.namespace, producer.name)).filter((candidate) =>
      producerIndexKeys(candidate).includes(key),
    );
  let candidates = await matching(group, wanted);
  if (candidates.length === 0) candidates = await matching(ANY_GROUP, loose);
  if (candidates.length === 0) {
    throw new SourceNotReadyError(
      `stage "${stage}": no ExternalArtifact in namespace ${producer.namespace} points back at producer ` +
        `${describe(producer)} (spec.sourceRef apiVersion ${producer.apiVersion}, kind ${producer.kind}, ` +
        `name ${producer.name}) yet`,
    );
  }
  if (candidates.length > 1) {
    const names = candidates.map((c) => c.metadata.name ?? "?").sort();
    throw new SourceNotReadyError(
      `stage "${stage}": producer ${describe(producer)} is claimed by ${candidates.length} ExternalArtifacts ` +
        `(${names.join(", ")}); the run waits until exactly one points back at it`,
    );
  }
  return candidates[0]!;
}

/** The usable artifact of a Ready source, or the error that says what is missing. */
function readyArtifact(source: KubeObject, stage: string, subject: string): Artifact {
  const notReady = readinessProblem(source);
  if (notReady) throw new SourceNotReadyError(`stage "${stage}": ${subject} ${notReady}`);
  const status = asRecord(source["status"]);
  const artifact = asRecord(status?.["artifact"]);
  if (!artifact) throw new SourceNotReadyError(`stage "${stage}": ${subject} has no artifact yet (status.artifact is empty)`);
  const url = stringField(artifact, "url");
  const revision = stringField(artifact, "revision");
  const digest = stringField(artifact, "digest");
  const missing = [!url && "url", !revision && "revision", !digest && "digest"].filter(Boolean);
  if (missing.length > 0) {
    throw new ArtifactError(
      `stage "${stage}": ${subject} publishes an artifact without status.artifact.${missing.join(", ")}; ` +
        `it cannot be fetched and verified until its producer sets ${missing.length > 1 ? "them" : "it"}`,
    );
  }
  const result: Artifact = { url: url!, revision: revision!, digest: digest! };
  const size = artifact["size"];
  if (typeof size === "number" && Number.isSafeInteger(size) && size >= 0) result.size = size;
  const lastUpdateTime = stringField(artifact, "lastUpdateTime");
  if (lastUpdateTime) result.lastUpdateTime = lastUpdateTime;
  return result;
}

function readinessProblem(source: KubeObject): string | undefined {
  const status = asRecord(source["status"]);
  const conditions = Array.isArray(status?.["conditions"]) ? (status["conditions"] as Condition[]) : [];
  const ready = conditions.find((c) => c?.type === "Ready");
  if (!ready) return "has no Ready condition yet";
  if (ready.status !== "True") {
    const detail = [ready.reason, ready.message].filter(Boolean).join(": ");
    return `is not Ready${detail ? ` (${detail})` : ""}`;
  }
  const generation = source.metadata.generation;
  if (typeof ready.observedGeneration === "number" && typeof generation === "number" && ready.observedGeneration < generation) {
    return `is still reconciling generation ${generation} (Ready reflects generation ${ready.observedGeneration})`;
  }
  return undefined;
}

interface BackPointer {
  apiVersion?: string;
  kind: string;
  name: string;
  namespace?: string;
}

function backPointer(externalArtifact: KubeObject): BackPointer | undefined {
  const ref = asRecord(asRecord(externalArtifact["spec"])?.["sourceRef"]);
  const kind = ref && stringField(ref, "kind");
  const name = ref && stringField(ref, "name");
  if (!ref || !kind || !name) return undefined;
  return { apiVersion: stringField(ref, "apiVersion"), kind, name, namespace: stringField(ref, "namespace") };
}

function objectRef(object: KubeObject): ObjectRef {
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    namespace: object.metadata.namespace ?? "",
    name: object.metadata.name ?? "",
  };
}

/** `group` of `group/version`; "" for the core API (`v1`). */
function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? "" : apiVersion.slice(0, slash);
}

/** `GitRepository ns/name` for Flux kinds, `Kind.group ns/name` for producers. */
function describe(ref: ObjectRef): string {
  const group = groupOf(ref.apiVersion);
  const kind = group === FLUX_SOURCE_GROUP || group === "" ? ref.kind : `${ref.kind}.${group}`;
  return `${kind} ${ref.namespace}/${ref.name}`;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function stringField(record: Record<string, unknown>, field: string): string | undefined {
  const value = record[field];
  return typeof value === "string" && value !== "" ? value : undefined;
}

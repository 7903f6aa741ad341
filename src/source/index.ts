/** sourceRef -> artifact -> unpacked directory. */
export type { Artifact } from "./artifact.js";
export { displayUrl } from "./artifact.js";
export { ArtifactCache, DEFAULT_CACHE_MAX_BYTES, type ArtifactCacheOptions, type ArtifactLease } from "./artifact-cache.js";
export { DIGEST_ALGORITHMS, parseDigest, type DigestAlgorithm } from "./digest.js";
export {
  DEFAULT_BACKOFF,
  DEFAULT_FETCH_RETRIES,
  DEFAULT_FETCH_TIMEOUT_MS,
  DEFAULT_MAX_ARTIFACT_BYTES,
  fetchArtifact,
  type FetchedArtifact,
  type FetchOptions,
} from "./fetch.js";
export {
  DIRECT_SOURCE_KINDS,
  EXTERNAL_ARTIFACT_KIND,
  FLUX_SOURCE_API_VERSION,
  FLUX_SOURCE_GROUP,
  producerIndexKeys,
  producerKey,
  resolveSource,
  sourceKey,
  type ObjectRef,
  type ResolvedSource,
  type ResolveOptions,
  type ResolveRequest,
  type SourceReader,
} from "./resolve.js";
export { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_UNPACKED_BYTES, unpackArtifact, type UnpackedArtifact, type UnpackOptions } from "./unpack.js";

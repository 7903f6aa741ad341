/**
 * The `status.artifact` contract shared by ExternalArtifact, GitRepository,
 * OCIRepository and Bucket (source.toolkit.fluxcd.io/v1), reduced to what a
 * consumer needs.
 */
export interface Artifact {
  /** HTTP(S) address of the tarball, served by the source's controller. */
  url: string;
  /** Human-readable origin revision, e.g. `main@sha1:…` or `v1.0.0@sha256:…`. */
  revision: string;
  /** `<algorithm>:<hex>` of the tarball at `url`. */
  digest: string;
  /** Size of the tarball in bytes, when the producer reports it. */
  size?: number;
  lastUpdateTime?: string;
}

/**
 * The URL for messages and logs: scheme, host and path only. A presigned or
 * token-bearing query string, or user:password in the authority, never leaves
 * this function.
 */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "<unparseable URL>";
  }
}

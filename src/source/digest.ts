import { createHash, type Hash } from "node:crypto";
import { ArtifactError } from "../errors.js";
import { Blake3 } from "./blake3.js";

/**
 * The digest algorithms Flux writes into `status.artifact.digest`:
 * source-controller's `--artifact-digest-algo` accepts sha256 (the default),
 * sha384, sha512 and blake3 (RFC-0005); the Flux artifact SDK that third-party
 * producers use also offers sha1.
 */
export const DIGEST_ALGORITHMS = ["sha256", "sha384", "sha512", "blake3", "sha1"] as const;
export type DigestAlgorithm = (typeof DIGEST_ALGORITHMS)[number];

const HEX_LENGTH: Record<DigestAlgorithm, number> = {
  sha1: 40,
  sha256: 64,
  sha384: 96,
  sha512: 128,
  blake3: 64,
};

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  /** Lower-case hex. */
  hex: string;
}

/** Parses `<algorithm>:<hex>`; an unknown algorithm or malformed value is a terminal ArtifactError. */
export function parseDigest(digest: string): ParsedDigest {
  const separator = digest.indexOf(":");
  const algorithm = digest.slice(0, separator);
  const hex = digest.slice(separator + 1).toLowerCase();
  if (separator <= 0 || !isDigestAlgorithm(algorithm)) {
    throw new ArtifactError(
      `artifact digest "${digest}" uses an unsupported algorithm "${algorithm}"; supported: ${DIGEST_ALGORITHMS.join(", ")}`,
      { terminal: true },
    );
  }
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(hex)) {
    throw new ArtifactError(
      `artifact digest "${digest}" is not a valid ${algorithm} digest (expected ${HEX_LENGTH[algorithm]} hex characters)`,
      { terminal: true },
    );
  }
  return { algorithm, hex };
}

function isDigestAlgorithm(value: string): value is DigestAlgorithm {
  return (DIGEST_ALGORITHMS as readonly string[]).includes(value);
}

/** An incremental hasher for one of the supported algorithms. */
export interface Digester {
  update(chunk: Uint8Array): void;
  /** Lower-case hex of everything passed to update(). */
  hex(): string;
}

export function createDigester(algorithm: DigestAlgorithm): Digester {
  if (algorithm === "blake3") {
    const hasher = new Blake3();
    return {
      update: (chunk) => void hasher.update(chunk),
      hex: () => hasher.digest().toString("hex"),
    };
  }
  const hash: Hash = createHash(algorithm);
  return {
    update: (chunk) => void hash.update(chunk),
    hex: () => hash.digest("hex"),
  };
}

/** `<algorithm>:<hex>` of `data`. */
export function computeDigest(algorithm: DigestAlgorithm, data: Uint8Array): string {
  const digester = createDigester(algorithm);
  digester.update(data);
  return `${algorithm}:${digester.hex()}`;
}

/** Abbreviates a digest for messages: the algorithm in full, the first 12 hex characters. */
export function shortDigest(algorithm: string, hex: string): string {
  return `${algorithm}:${hex.slice(0, 12)}…`;
}

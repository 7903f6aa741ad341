import type { TMap } from "../tree.js";

/** A file read into the sops tree, its metadata taken out, ready to be emitted once its values are decrypted. */
export interface LoadedFile {
  branches: TMap[];
  /** The `sops` metadata, unflattened (undefined when absent). */
  metadata: unknown;
  /** The plaintext file, in the format sops -d prints. Call after the tree is decrypted. */
  emit(): Buffer;
}

/** The file does not parse, or its metadata is malformed. Never carries a value. */
export class MalformedError extends Error {}

/**
 * What the cloud KMS providers share: reading a recipient entry's fields,
 * checking the recovered data key, and honouring the caller's AbortSignal.
 *
 * Error policy (the KmsProvider contract in ../types.ts):
 * - no credentials configured for a provider → the provider returns
 *   undefined, so the decryptor can say "no usable key";
 * - the service answered and refused (access denied, key not found or
 *   disabled, wrong ciphertext), or could not be reached → DecryptionError
 *   naming the provider and the key id. Messages never carry key material:
 *   not the data key, not the encrypted data key, not a token.
 */
import { DecryptionError } from "../../errors.js";
import type { RecipientEntry } from "../types.js";

/** Size of a SOPS data key (AES-256). */
export const DATA_KEY_BYTES = 32;

/** A string field of a recipient entry, or undefined when absent, empty or not a string. */
export function field(entry: RecipientEntry, name: string): string | undefined {
  const value = entry[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** A required string field; a DecryptionError naming the provider when it is missing. */
export function requiredField(entry: RecipientEntry, name: string, provider: string): string {
  const value = field(entry, name);
  if (value === undefined) {
    throw new DecryptionError(`${provider}: the recipient entry has no "${name}"`);
  }
  return value;
}

/** The data key a service returned, checked to be a SOPS data key. */
export function checkDataKey(key: Uint8Array, provider: string, keyId: string): Buffer {
  if (key.length !== DATA_KEY_BYTES) {
    throw new DecryptionError(
      `${provider} key ${keyId} returned ${key.length} bytes where a SOPS data key has ${DATA_KEY_BYTES}; the entry was not made by sops`,
    );
  }
  return Buffer.from(key.buffer, key.byteOffset, key.length);
}

/** Strict base64 (standard alphabet, padding optional) → bytes; undefined when the text is not base64. */
export function decodeBase64(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) || trimmed.replace(/=+$/, "").length % 4 === 1) return undefined;
  return Buffer.from(trimmed, "base64");
}

/** Strict unpadded base64url (what Go's base64.RawURLEncoding writes) → bytes; undefined otherwise. */
export function decodeBase64Url(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9_-]*$/.test(trimmed) || trimmed.length % 4 === 1) return undefined;
  return Buffer.from(trimmed, "base64url");
}

/** One line of a service's error text, bounded, for a message. */
export function describeCause(err: unknown, max = 300): string {
  let text: string;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const name = err.name && err.name !== "Error" ? err.name : typeof code === "string" ? code : "";
    text = name && !err.message.startsWith(name) ? `${name}: ${err.message}` : err.message;
  } else {
    text = String(err);
  }
  text = text.replace(/\s+/g, " ").trim();
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The abort reason as a thrown value when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}

/** Whether an error is the caller's abort (rethrown as it is, never mapped). */
export function isAbort(err: unknown, signal: AbortSignal | undefined): boolean {
  if (signal?.aborted) return true;
  return err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError");
}

/**
 * Settles with `promise`, or rejects with the signal's reason as soon as it
 * fires (for a client call that takes no signal: its request is left to
 * finish, its answer ignored).
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/** A small insertion-ordered cache: clients are reused per (region, role, …), at most `max` of them. */
export class BoundedCache<V> {
  private readonly entries = new Map<string, V>();
  constructor(private readonly max: number) {}

  getOrCreate(key: string, create: () => V): V {
    const found = this.entries.get(key);
    if (found !== undefined) return found;
    const value = create();
    if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, value);
    return value;
  }
}

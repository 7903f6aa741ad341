import { setTimeout as sleep } from "node:timers/promises";

export interface WaitOptions {
  /** What is awaited, for the timeout message ("Deployment app Available"). */
  readonly description: string;
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** Checked each round; a returned message aborts the wait at once (e.g. "etcd exited"). */
  readonly abortIf?: () => string | undefined;
}

/** The awaited condition did not hold in time. */
export class WaitTimeoutError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "WaitTimeoutError";
  }
}

/**
 * Polls `probe` until it returns a value other than `undefined`/`false` and
 * returns that value. Errors thrown by the probe count as "not yet"; the last
 * one is attached to the timeout error, and its message to the description.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const intervalMs = options.intervalMs ?? 100;
  let lastError: unknown;
  for (;;) {
    const abort = options.abortIf?.();
    if (abort !== undefined) throw new WaitTimeoutError(`gave up waiting for ${options.description}: ${abort}`);
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new WaitTimeoutError(
        `timed out after ${options.timeoutMs}ms waiting for ${options.description}${detail}`,
        lastError === undefined ? undefined : { cause: lastError },
      );
    }
    await sleep(intervalMs);
  }
}

/**
 * The one deadline loop: try, and if not done, pause and try again until a
 * timeout. The apply, prune, CRD and health waits are all this loop with
 * their own attempt and their own timeout error.
 */
import type { Clock } from "./clock.js";

export interface PollOptions {
  /**
   * How long to keep trying, in milliseconds from the first attempt. The last
   * attempt happens exactly at the deadline (pauses never overshoot it); 0
   * tries once.
   */
  timeoutMs: number;
  /** Pause between attempts, in milliseconds. */
  intervalMs: number;
  /** Aborting ends the wait with the signal's reason (before an attempt or during a pause). */
  signal?: AbortSignal;
  /**
   * The error thrown when the deadline passes without a result; it usually
   * describes what the last attempt saw. Default a {@link PollTimeoutError}.
   */
  onTimeout?: () => Error;
}

/** What `pollUntil` throws at its deadline when no `onTimeout` is given. */
export class PollTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`condition not met within ${timeoutMs}ms`);
    this.name = "PollTimeoutError";
  }
}

/**
 * Calls `attempt` until it returns something other than `undefined`, and
 * returns that. Between attempts it sleeps `intervalMs` on `clock` (less when
 * the deadline is nearer). Time is read from `clock.monotonic()`.
 *
 * Throws what `attempt` throws (unchanged, ending the wait), the signal's
 * reason when aborted, and `onTimeout()` (or a PollTimeoutError) when
 * `timeoutMs` passes.
 */
export async function pollUntil<T>(clock: Clock, options: PollOptions, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = clock.monotonic() + Math.max(0, options.timeoutMs);
  for (;;) {
    options.signal?.throwIfAborted();
    const result = await attempt();
    if (result !== undefined) return result;
    const now = clock.monotonic();
    if (now >= deadline) throw options.onTimeout ? options.onTimeout() : new PollTimeoutError(options.timeoutMs);
    await clock.sleep(Math.min(options.intervalMs, deadline - now), options.signal);
  }
}

/**
 * Time as a parameter. Everything that waits, times out, delays or stamps a
 * time takes a {@link Clock} (default {@link systemClock}), so tests drive a
 * fake one instead of sleeping and asserting millisecond windows.
 */

/** A scheduled callback; cancelling after it fired (or twice) does nothing. */
export interface Timer {
  cancel(): void;
}

export interface TimerOptions {
  /**
   * Whether a pending timer keeps the Node.js process alive (default true).
   * Housekeeping timers (event aggregation) pass false.
   */
  keepAlive?: boolean;
}

/** Time, injectable so tests need not sleep. */
export interface Clock {
  /** Wall-clock time in milliseconds since the Unix epoch: for timestamps written to or compared with the API server. */
  now(): number;
  /**
   * Milliseconds from an arbitrary origin that never go backwards (a wall-clock
   * step does not move it): for deadlines, durations and lease expiry.
   */
  monotonic(): number;
  /** Resolves after `ms` (negative counts as 0), or rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `callback` once after `ms` (negative counts as 0). */
  setTimer(ms: number, callback: () => void, options?: TimerOptions): Timer;
}

/** The real clock: `Date.now`, `performance.now` and Node.js timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
  setTimer: (ms, callback, options) => {
    const timer = setTimeout(callback, Math.max(0, ms));
    if (options?.keepAlive === false) timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

/**
 * Sleeps like `clock.sleep`, but an abort ends the pause early without an
 * error: for loops that check the signal themselves after each pause.
 */
export async function pause(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await clock.sleep(ms, signal);
  } catch (err) {
    if (!signal?.aborted) throw err;
  }
}

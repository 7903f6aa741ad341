import { backoffDelay, withJitter } from "../kube/backoff.js";
import { isTransient } from "../kube/errors.js";
import { systemClock, type Clock } from "../util/clock.js";

const POLICY = { baseMs: 100, maxMs: 2_000 };

export interface RetryOptions {
  /** Calls in all, the first included; default 5. */
  attempts?: number;
  /** Times the pauses between calls; default the system clock. */
  clock?: Clock;
  /** Aborting ends a pause with the signal's reason (no further call is made). */
  signal?: AbortSignal;
}

/**
 * Retries `call` on throttling, 5xx and network failures, a few times with
 * backoff (100ms doubling to 2s, jittered to half–full). A fresh CRD's storage
 * answers "storage is (re)initializing" for a moment after it is Established;
 * a busy API server throttles bursts.
 *
 * Throws what `call` threw when it is not transient or the attempts are used
 * up, and the signal's reason when it aborts during a pause.
 */
export async function retryTransient<T>(call: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  const clock = options.clock ?? systemClock;
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!isTransient(err) || attempt + 1 >= attempts) throw err;
      await clock.sleep(withJitter(backoffDelay(attempt, POLICY)), options.signal);
    }
  }
}

import { backoffDelay, sleep, withJitter } from "../kube/backoff.js";
import { isTransient } from "../kube/errors.js";

const POLICY = { baseMs: 100, maxMs: 2_000 };

/**
 * Retries `call` on throttling, 5xx and network failures, a few times with
 * backoff. A fresh CRD's storage answers "storage is (re)initializing" for a
 * moment after it is Established; a busy API server throttles bursts.
 */
export async function retryTransient<T>(call: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!isTransient(err) || attempt + 1 >= attempts) throw err;
      await sleep(withJitter(backoffDelay(attempt, POLICY)));
    }
  }
}

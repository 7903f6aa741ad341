/** Capped exponential backoff: `base * 2^attempt`, never above `max`. */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export function backoffDelay(attempt: number, policy: BackoffPolicy): number {
  if (attempt <= 0) return Math.min(policy.baseMs, policy.maxMs);
  // 2^attempt overflows to Infinity for large attempts; Math.min still caps it.
  return Math.min(policy.baseMs * 2 ** attempt, policy.maxMs);
}

/** Full jitter in [delay/2, delay], so reconnecting clients don't move in lockstep. */
export function withJitter(delayMs: number, random: () => number = Math.random): number {
  return delayMs / 2 + random() * (delayMs / 2);
}

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

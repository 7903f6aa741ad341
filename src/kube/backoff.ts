import { pause, systemClock, type Clock } from "../util/clock.js";

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

/**
 * Resolves after `ms` on `clock` (default the system clock), or early
 * (without error) when `signal` aborts. Never rejects.
 */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return pause(clock, ms, signal);
}

import { systemClock, type Clock, type Timer } from "../util/clock.js";
import { backoffDelay, type BackoffPolicy } from "./backoff.js";

/**
 * What a handler asks for next: nothing (done until the next add), a requeue
 * after a fixed delay (resets the failure count), or a rate-limited requeue.
 */
export type ProcessResult = void | { requeueAfterMs?: number; requeue?: boolean };

/** Processes one key. `signal` aborts when the queue shuts down (leadership lost, SIGTERM). */
export type KeyHandler = (key: string, signal: AbortSignal) => Promise<ProcessResult>;

/** Hooks for prom-client's `workqueue_*` series; every one is optional. */
export interface WorkQueueMetrics {
  /** Keys waiting (not counting those being processed). */
  depth?(depth: number): void;
  /** An add that was not de-duplicated away. */
  added?(): void;
  /** A rate-limited requeue (failure or explicit `requeue`). */
  retried?(): void;
  /** Time from add to a worker picking the key up. */
  queueDuration?(seconds: number): void;
  /** Time the handler took. */
  workDuration?(seconds: number): void;
}

export interface WorkQueueOptions {
  /** Parallel workers; one key is never processed by two at once. Default 1. */
  concurrency?: number;
  /** Per-key retry backoff; default 5ms doubling up to 1000s (controller-runtime's). */
  backoff?: BackoffPolicy;
  metrics?: WorkQueueMetrics;
  /** Called when a handler throws, with the delay before the retry. */
  onError?(key: string, err: unknown, retryInMs: number): void;
  /** Times delayed adds, retries and the duration metrics; default the system clock. */
  clock?: Clock;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 5, maxMs: 1_000_000 };

/**
 * A de-duplicating work queue with controller-runtime semantics: a key is
 * queued at most once, never processed by two workers at once (a key added
 * while it is processed runs again right after), retried with per-key
 * capped exponential backoff, and can be delayed with `addAfter`.
 */
export class WorkQueue {
  readonly #concurrency: number;
  readonly #backoff: BackoffPolicy;
  readonly #metrics: WorkQueueMetrics;
  readonly #onError: WorkQueueOptions["onError"];
  readonly #clock: Clock;

  #items: string[] = [];
  #head = 0;
  /** Keys that need processing: queued, or added again while processing. */
  readonly #dirty = new Set<string>();
  /** Keys a worker runs now, with the monotonic time (ms) it started. */
  readonly #processing = new Map<string, number>();
  readonly #addedAt = new Map<string, number>();
  readonly #delayed = new Map<string, { at: number; timer: Timer }>();
  readonly #failures = new Map<string, number>();
  #waiters: (() => void)[] = [];
  #workers: Promise<void>[] = [];
  #shuttingDown = false;
  readonly #abort = new AbortController();

  constructor(options: WorkQueueOptions = {}) {
    this.#concurrency = Math.max(1, options.concurrency ?? 1);
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.#metrics = options.metrics ?? {};
    this.#onError = options.onError;
    this.#clock = options.clock ?? systemClock;
  }

  /** Queues `key` now. It supersedes a pending `addAfter` for the same key. */
  add(key: string): void {
    if (this.#shuttingDown) return;
    this.#cancelDelayed(key);
    if (this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.#addedAt.set(key, this.#clock.monotonic());
    this.#metrics.added?.();
    if (this.#processing.has(key)) return;
    this.#push(key);
  }

  /**
   * Queues `key` after `delayMs` milliseconds on the queue's clock. If the key is already queued, or a delayed
   * add for it fires sooner, this one is dropped: the earlier add wins.
   */
  addAfter(key: string, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    if (this.#dirty.has(key)) return;
    const at = this.#clock.monotonic() + delayMs;
    const pending = this.#delayed.get(key);
    if (pending && pending.at <= at) return;
    pending?.timer.cancel();
    const timer = this.#clock.setTimer(delayMs, () => {
      this.#delayed.delete(key);
      this.add(key);
    });
    this.#delayed.set(key, { at, timer });
  }

  /** Queues `key` after its backoff delay and counts a failure; returns the delay. */
  addRateLimited(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delay = backoffDelay(failures, this.#backoff);
    this.#metrics.retried?.();
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets `key`'s failure count (after a success). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** Rate-limited requeues of `key` since it last succeeded (or was forgotten). */
  numRequeues(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Keys waiting for a worker. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Keys with a pending `addAfter`/rate-limited retry. */
  get delayedCount(): number {
    return this.#delayed.size;
  }

  /** Whether a worker is running the handler for `key` right now. */
  isProcessing(key: string): boolean {
    return this.#processing.has(key);
  }

  /**
   * How long (seconds) each key being processed has been running: what
   * controller-runtime's `workqueue_unfinished_work_seconds` (their sum) and
   * `workqueue_longest_running_processor_seconds` (their max) report.
   */
  inFlightSeconds(): number[] {
    const now = this.#clock.monotonic();
    return [...this.#processing.values()].map((started) => (now - started) / 1000);
  }

  /** True once `shutDown` was called. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /**
   * Starts the workers. A handler that throws is retried with backoff
   * (`onError` is told); one that returns `requeueAfterMs` runs again after
   * that delay; otherwise the key is done until the next add.
   */
  start(handler: KeyHandler): void {
    if (this.#workers.length > 0) throw new Error("WorkQueue.start called twice");
    for (let i = 0; i < this.#concurrency; i++) this.#workers.push(this.#work(handler));
  }

  /**
   * Stops: no new keys are handed out or accepted, pending delays and
   * queued keys are dropped, handlers see their signal abort; resolves once
   * every running handler has returned.
   */
  async shutDown(): Promise<void> {
    if (!this.#shuttingDown) {
      this.#shuttingDown = true;
      for (const { timer } of this.#delayed.values()) timer.cancel();
      this.#delayed.clear();
      this.#items = [];
      this.#head = 0;
      this.#dirty.clear();
      this.#addedAt.clear();
      this.#abort.abort(new Error("work queue shut down"));
      for (const wake of this.#waiters.splice(0)) wake();
    }
    await Promise.all(this.#workers);
  }

  async #work(handler: KeyHandler): Promise<void> {
    for (;;) {
      const key = await this.#next();
      if (key === undefined) return;
      const started = this.#clock.monotonic();
      let result: ProcessResult = undefined;
      let failed = false;
      let error: unknown;
      try {
        result = await handler(key, this.#abort.signal);
      } catch (err) {
        failed = true;
        error = err;
      }
      this.#metrics.workDuration?.((this.#clock.monotonic() - started) / 1000);
      this.#done(key);
      if (this.#shuttingDown) continue;
      if (failed) {
        const delay = this.addRateLimited(key);
        this.#onError?.(key, error, delay);
      } else if (result?.requeueAfterMs !== undefined && result.requeueAfterMs > 0) {
        this.forget(key);
        this.addAfter(key, result.requeueAfterMs);
      } else if (result?.requeue) {
        this.addRateLimited(key);
      } else {
        this.forget(key);
      }
    }
  }

  async #next(): Promise<string | undefined> {
    while (this.length === 0) {
      if (this.#shuttingDown) return undefined;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    if (this.#shuttingDown) return undefined;
    const key = this.#items[this.#head++]!;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    this.#metrics.depth?.(this.length);
    this.#processing.set(key, this.#clock.monotonic());
    this.#dirty.delete(key);
    const addedAt = this.#addedAt.get(key);
    this.#addedAt.delete(key);
    if (addedAt !== undefined) this.#metrics.queueDuration?.((this.#clock.monotonic() - addedAt) / 1000);
    return key;
  }

  #done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key) && !this.#shuttingDown) this.#push(key);
  }

  #push(key: string): void {
    this.#items.push(key);
    this.#metrics.depth?.(this.length);
    this.#waiters.shift()?.();
  }

  #cancelDelayed(key: string): void {
    const pending = this.#delayed.get(key);
    if (!pending) return;
    pending.timer.cancel();
    this.#delayed.delete(key);
  }
}

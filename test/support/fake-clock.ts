/**
 * A clock tests drive by hand: time stands still until the test advances it,
 * and then every sleep and timer due by the new time fires, in order. Code
 * under test that takes a `Clock` (src/util/clock.ts) then runs without a
 * single real sleep, and a test can assert exact times instead of windows.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { Clock, Timer, TimerOptions } from "../../src/util/clock.js";

interface Pending {
  at: number;
  seq: number;
  fire: () => void;
  /** A sleep (rather than a timer), for `sleeping`. */
  sleep: boolean;
}

export interface FakeClockOptions {
  /** Start time in ms since the epoch; default 2024-01-01T00:00:00Z. */
  start?: number;
  /**
   * Every sleep moves time forward to its end at once (firing timers due
   * before it) instead of waiting for `advance`: for a single loop under test,
   * where "time only moves when the loop sleeps".
   */
  autoAdvance?: boolean;
}

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #autoAdvance: boolean;
  readonly #pending: Pending[] = [];
  #watchers: { ready: () => boolean; resolve: () => void }[] = [];
  /** Every sleep asked for, in ms, in order (timers not included). */
  readonly sleeps: number[] = [];

  constructor(options: FakeClockOptions = {}) {
    this.#now = options.start ?? Date.UTC(2024, 0, 1);
    this.#autoAdvance = options.autoAdvance ?? false;
  }

  now(): number {
    return this.#now;
  }

  monotonic(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    this.sleeps.push(ms);
    if (this.#autoAdvance) {
      this.#advanceSync(this.#now + Math.max(0, ms));
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry = this.#schedule(
        ms,
        () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        true,
      );
      const onAbort = () => {
        this.#remove(entry);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  setTimer(ms: number, callback: () => void, _options?: TimerOptions): Timer {
    const entry = this.#schedule(ms, callback, false);
    return { cancel: () => this.#remove(entry) };
  }

  /** Sleeps and timers waiting for time to move. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Sleeps (not timers) waiting for time to move: how many loops are parked on this clock. */
  get sleeping(): number {
    return this.#pending.filter((p) => p.sleep).length;
  }

  /** When the next sleep or timer is due (ms since the epoch), if any. */
  nextDue(): number | undefined {
    return this.#pending[0]?.at;
  }

  /**
   * Resolves once at least `count` sleeps are pending, i.e. once that many
   * loops (which may do real I/O between sleeps) are parked on this clock.
   * `count` may be a function, re-read as loops end (return fewer then).
   * Rejects after `realTimeoutMs` of real time, naming how many are parked.
   */
  whenSleeping(count: number | (() => number) = 1, realTimeoutMs = 30_000): Promise<void> {
    const wanted = typeof count === "number" ? () => count : count;
    if (this.sleeping >= wanted()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(guard);
        clearInterval(recheck);
        this.#watchers = this.#watchers.filter((w) => w !== watcher);
      };
      const watcher = {
        ready: () => this.sleeping >= wanted(),
        resolve: () => {
          done();
          resolve();
        },
      };
      // A guard, not a sleep: fails a test whose loop ended or hung instead of parking on the clock.
      const guard = setTimeout(() => {
        done();
        reject(new Error(`expected ${wanted()} loops sleeping on the fake clock, ${this.sleeping} are (after ${realTimeoutMs}ms of real time)`));
      }, realTimeoutMs);
      // A loop that ends never sleeps again; notice a count function that drops.
      const recheck = setInterval(() => this.#notifyWatchers(), 5);
      this.#watchers.push(watcher);
    });
  }

  /**
   * Moves time forward by `ms`, firing each sleep and timer due on the way at
   * its own time, in order, and letting the woken code run (until it waits on
   * I/O or the clock again) before the next one fires.
   */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.#now + ms);
  }

  /** Like `advance`, to an absolute time (ms since the epoch). */
  async advanceTo(time: number): Promise<void> {
    for (;;) {
      const next = this.#pending[0];
      if (!next || next.at > time) break;
      this.#fireNext();
      await settle();
    }
    if (time > this.#now) this.#now = time;
    await settle();
  }

  /**
   * Moves time to the next due sleep or timer (not beyond `limit`) and fires
   * everything due then. Returns false, without moving, when nothing is due
   * by `limit`.
   */
  async step(limit = Infinity): Promise<boolean> {
    const next = this.#pending[0];
    if (!next || next.at > limit) return false;
    const at = next.at;
    while (this.#pending[0] && this.#pending[0].at === at) this.#fireNext();
    await settle();
    return true;
  }

  /**
   * Runs `loops` clock-driven loops for `ms` of fake time: each round waits
   * until all of them are parked in a sleep, then moves to the next due time.
   * For code that does real I/O between sleeps (a leader elector talking to an
   * API server). `until` ends the run early when it holds after a round (time
   * then stays where that round left it). `loops` may be a function, for
   * loops that can end during the run.
   */
  async run(ms: number, loops: number | (() => number), until?: () => boolean): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await this.whenSleeping(loops);
      if (until?.()) return;
      if (!(await this.step(end))) break;
    }
    if (end > this.#now) this.#now = end;
    await settle();
  }

  #schedule(ms: number, fire: () => void, sleep: boolean): Pending {
    const entry: Pending = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fire, sleep };
    let i = this.#pending.length;
    while (i > 0 && this.#pending[i - 1]!.at > entry.at) i--;
    this.#pending.splice(i, 0, entry);
    if (sleep) this.#notifyWatchers();
    return entry;
  }

  #remove(entry: Pending): void {
    const i = this.#pending.indexOf(entry);
    if (i >= 0) this.#pending.splice(i, 1);
  }

  #fireNext(): void {
    const next = this.#pending.shift()!;
    if (next.at > this.#now) this.#now = next.at;
    next.fire();
  }

  #advanceSync(time: number): void {
    while (this.#pending[0] && this.#pending[0].at <= time) this.#fireNext();
    if (time > this.#now) this.#now = time;
  }

  #notifyWatchers(): void {
    for (const w of this.#watchers.filter((w) => w.ready())) w.resolve();
  }
}

/** Lets promise chains woken by a fired timer run to their next real wait. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await yieldToEventLoop();
}

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay, withJitter } from "../../../src/kube/backoff.js";
import { WorkQueue } from "../../../src/kube/workqueue.js";
import { FakeClock } from "../../support/fake-clock.js";
import { waitFor } from "../../support/wait.js";

/** Resolves when `predicate` holds (polled; the queue's own timing runs on a fake clock). */
const until = (predicate: () => boolean, description = "condition") =>
  waitFor(() => predicate(), { description, timeoutMs: 10_000, intervalMs: 1 });

/** A promise the test settles by hand, to hold a handler for as long as it wants. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe("WorkQueue", () => {
  it("never runs the same key twice at once, and re-runs it once after a burst of adds", async () => {
    const queue = new WorkQueue({ concurrency: 4, clock: new FakeClock() });
    const gates = [gate(), gate()];
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    queue.start(async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await gates[runs]!.promise;
      running--;
      runs++;
    });
    queue.add("ns/a");
    await until(() => queue.isProcessing("ns/a"));
    for (let i = 0; i < 50; i++) queue.add("ns/a");
    assert.equal(queue.length, 0, "a key being processed is not handed to another worker");
    gates[0]!.open();
    await until(() => runs === 1 && queue.isProcessing("ns/a"), "the follow-up run");
    assert.equal(queue.length, 0, "the burst collapsed into one follow-up run");
    gates[1]!.open();
    await until(() => runs === 2 && !queue.isProcessing("ns/a"));
    assert.equal(maxRunning, 1);
    assert.equal(queue.length, 0);
    await queue.shutDown();
    assert.equal(runs, 2, "exactly one follow-up run");
  });

  it("de-duplicates queued keys and processes distinct keys in parallel", async () => {
    const queue = new WorkQueue({ concurrency: 3, clock: new FakeClock() });
    const seen: string[] = [];
    const release = gate();
    let running = 0;
    let maxRunning = 0;
    for (const key of ["a", "b", "a", "c", "b", "a"]) queue.add(key);
    assert.equal(queue.length, 3);
    queue.start(async (key) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await release.promise;
      seen.push(key);
      running--;
    });
    await until(() => running === 3, "three keys running at once");
    release.open();
    await until(() => seen.length === 3);
    assert.deepEqual([...seen].sort(), ["a", "b", "c"]);
    assert.equal(maxRunning, 3);
    await queue.shutDown();
  });

  it("retries a failing key with growing backoff, at exactly those delays, and reports the error", async () => {
    const clock = new FakeClock({ start: 0 });
    const errors: { key: string; retryInMs: number }[] = [];
    const queue = new WorkQueue({
      backoff: { baseMs: 5, maxMs: 20 },
      clock,
      onError: (key, _err, retryInMs) => errors.push({ key, retryInMs }),
    });
    const attemptsAt: number[] = [];
    queue.start(async () => {
      attemptsAt.push(clock.now());
      if (attemptsAt.length <= 4) throw new Error("boom");
    });
    queue.add("k");
    await until(() => attemptsAt.length === 1 && queue.delayedCount === 1);
    await clock.advance(4);
    assert.equal(attemptsAt.length, 1, "no retry before the backoff has passed");
    await clock.advance(1_000);
    await until(() => attemptsAt.length === 5);
    assert.deepEqual(
      errors.map((e) => e.retryInMs),
      [5, 10, 20, 20],
      "doubles from the base and stays at the cap",
    );
    assert.deepEqual(attemptsAt, [0, 5, 15, 35, 55], "each retry ran when its backoff ended");
    await until(() => queue.numRequeues("k") === 0);
    await queue.shutDown();
  });

  it("forget resets the backoff of a key", () => {
    const queue = new WorkQueue({ backoff: { baseMs: 100, maxMs: 10_000 }, clock: new FakeClock() });
    assert.equal(queue.addRateLimited("k"), 100);
    assert.equal(queue.addRateLimited("k"), 200);
    assert.equal(queue.numRequeues("k"), 2);
    queue.forget("k");
    assert.equal(queue.addRateLimited("k"), 100);
    void queue.shutDown();
  });

  it("addAfter delays a key; a sooner add wins and a later one is dropped", async () => {
    const clock = new FakeClock({ start: 0 });
    const queue = new WorkQueue({ clock });
    const runs: { key: string; at: number }[] = [];
    queue.start(async (key) => {
      runs.push({ key, at: clock.now() });
    });

    queue.addAfter("late", 60);
    queue.addAfter("late", 500); // later: dropped
    queue.addAfter("soon", 500);
    queue.addAfter("soon", 30); // sooner: replaces
    queue.addAfter("now", 200);
    queue.add("now"); // immediate add supersedes the delay
    await until(() => runs.length === 1);
    assert.equal(queue.delayedCount, 2, "late and soon wait; now's delay was cancelled");
    await clock.advance(29);
    assert.equal(runs.length, 1);
    await clock.advance(1);
    await until(() => runs.length === 2);
    await clock.advance(30);
    await until(() => runs.length === 3);
    await clock.advance(1_000);
    assert.deepEqual(runs, [
      { key: "now", at: 0 },
      { key: "soon", at: 30 },
      { key: "late", at: 60 },
    ]);
    assert.equal(queue.delayedCount, 0);
    assert.equal(clock.pending, 0, "no timer left for the dropped or superseded delays");
    await queue.shutDown();
  });

  it("a delayed add for a key that is already queued is dropped", () => {
    const queue = new WorkQueue({ clock: new FakeClock() });
    queue.add("k");
    queue.addAfter("k", 10);
    assert.equal(queue.delayedCount, 0);
    assert.equal(queue.length, 1);
    void queue.shutDown();
  });

  it("requeueAfterMs from the handler schedules the next run and resets failures", async () => {
    const clock = new FakeClock({ start: 0 });
    const queue = new WorkQueue({ backoff: { baseMs: 1, maxMs: 1 }, clock });
    const attemptsAt: number[] = [];
    queue.start(async () => {
      attemptsAt.push(clock.now());
      if (attemptsAt.length === 1) throw new Error("first fails");
      if (attemptsAt.length === 2) return { requeueAfterMs: 30_000 };
      return undefined;
    });
    queue.add("k");
    await until(() => attemptsAt.length === 1 && queue.delayedCount === 1);
    assert.equal(queue.numRequeues("k"), 1);
    await clock.advance(1);
    await until(() => attemptsAt.length === 2 && queue.delayedCount === 1);
    assert.equal(queue.numRequeues("k"), 0);
    await clock.advance(29_999);
    assert.equal(attemptsAt.length, 2, "not before requeueAfter");
    await clock.advance(1);
    await until(() => attemptsAt.length === 3 && !queue.isProcessing("k"));
    await clock.advance(3_600_000);
    assert.deepEqual(attemptsAt, [0, 1, 30_001], "runs once more after requeueAfter, and then not again");
    assert.equal(queue.delayedCount, 0);
    await queue.shutDown();
  });

  it("shutDown waits for running handlers, aborts their signal, and drops queued and delayed keys", async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ concurrency: 1, clock });
    const started: string[] = [];
    const finishing = gate();
    let finished = false;
    let sawAbort = false;
    queue.start(async (key, signal) => {
      started.push(key);
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      sawAbort = signal.aborted;
      await finishing.promise;
      finished = true;
    });
    queue.add("first");
    queue.add("second");
    queue.addAfter("third", 10);
    await until(() => started.length === 1);
    let shutDown = false;
    const stopping = queue.shutDown().then(() => (shutDown = true));
    await until(() => sawAbort, "the handler's signal aborts");
    assert.equal(shutDown, false, "shutDown waits while the handler runs");
    finishing.open();
    await stopping;
    assert.ok(finished, "shutDown resolved only after the running handler returned");
    await clock.advance(1_000);
    assert.deepEqual(started, ["first"]);
    queue.add("after-shutdown");
    assert.equal(queue.length, 0, "queued keys were dropped and adds after shutdown are ignored");
    assert.equal(queue.delayedCount, 0);
    assert.equal(clock.pending, 0, "the delayed add's timer was cancelled");
  });

  it("reports metrics, timing queue and work durations on its clock", async () => {
    const clock = new FakeClock();
    const m = { adds: 0, retries: 0, work: [] as number[], queue: [] as number[], depths: [] as number[] };
    const queue = new WorkQueue({
      backoff: { baseMs: 1, maxMs: 1 },
      clock,
      metrics: {
        added: () => m.adds++,
        retried: () => m.retries++,
        workDuration: (s) => m.work.push(s),
        queueDuration: (s) => m.queue.push(s),
        depth: (d) => m.depths.push(d),
      },
    });
    let attempts = 0;
    queue.add("a");
    queue.add("a");
    queue.add("b");
    await clock.advance(2_000); // a and b wait 2s for a worker
    queue.start(async (key) => {
      attempts++;
      await clock.sleep(500); // and take half a second of (fake) work each
      if (key === "a" && attempts === 1) throw new Error("once");
    });
    await clock.run(10_000, 1, () => attempts === 3);
    await clock.advance(500);
    await until(() => m.work.length === 3);
    await queue.shutDown();
    assert.equal(m.adds, 3, "two initial adds (a, b) plus the retry of a");
    assert.equal(m.retries, 1);
    assert.deepEqual(m.work, [0.5, 0.5, 0.5]);
    assert.deepEqual(m.queue.slice(0, 2), [2, 2.5], "a waited 2s; b waited 2s plus a's run");
    assert.equal(m.depths.at(-1), 0);
    assert.ok(m.depths.includes(2));
  });
});

describe("backoff", () => {
  it("doubles from the base and caps", () => {
    const policy = { baseMs: 5, maxMs: 1000 };
    assert.deepEqual(
      [0, 1, 2, 3, 7, 8, 200, 5000].map((n) => backoffDelay(n, policy)),
      [5, 10, 20, 40, 640, 1000, 1000, 1000],
    );
  });

  it("jitter stays within [delay/2, delay]", () => {
    assert.equal(withJitter(100, () => 0), 50);
    assert.equal(withJitter(100, () => 1), 100);
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { backoffDelay, withJitter } from "../../../src/kube/backoff.js";
import { WorkQueue } from "../../../src/kube/workqueue.js";

/** Resolves when `predicate` holds, polling every few ms; fails after `timeoutMs`. */
async function until(predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await delay(2);
  }
}

describe("WorkQueue", () => {
  it("never runs the same key twice at once, and re-runs it once after a burst of adds", async () => {
    const queue = new WorkQueue({ concurrency: 4 });
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    queue.start(async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await delay(20);
      running--;
      runs++;
    });
    queue.add("ns/a");
    await until(() => queue.isProcessing("ns/a"));
    for (let i = 0; i < 50; i++) queue.add("ns/a");
    await until(() => runs === 2 && !queue.isProcessing("ns/a"));
    await delay(30);
    assert.equal(maxRunning, 1);
    assert.equal(runs, 2, "the burst collapses into exactly one follow-up run");
    await queue.shutDown();
  });

  it("de-duplicates queued keys and processes distinct keys in parallel", async () => {
    const queue = new WorkQueue({ concurrency: 3 });
    const seen: string[] = [];
    let running = 0;
    let maxRunning = 0;
    for (const key of ["a", "b", "a", "c", "b", "a"]) queue.add(key);
    assert.equal(queue.length, 3);
    queue.start(async (key) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await delay(20);
      seen.push(key);
      running--;
    });
    await until(() => seen.length === 3);
    assert.deepEqual([...seen].sort(), ["a", "b", "c"]);
    assert.equal(maxRunning, 3);
    await queue.shutDown();
  });

  it("retries a failing key with growing backoff and reports the error", async () => {
    const errors: { key: string; retryInMs: number }[] = [];
    const queue = new WorkQueue({
      backoff: { baseMs: 5, maxMs: 20 },
      onError: (key, _err, retryInMs) => errors.push({ key, retryInMs }),
    });
    let attempts = 0;
    queue.start(async () => {
      attempts++;
      if (attempts <= 4) throw new Error("boom");
    });
    queue.add("k");
    await until(() => attempts === 5);
    assert.deepEqual(
      errors.map((e) => e.retryInMs),
      [5, 10, 20, 20],
      "doubles from the base and stays at the cap",
    );
    await until(() => queue.numRequeues("k") === 0);
    await queue.shutDown();
  });

  it("forget resets the backoff of a key", () => {
    const queue = new WorkQueue({ backoff: { baseMs: 100, maxMs: 10_000 } });
    assert.equal(queue.addRateLimited("k"), 100);
    assert.equal(queue.addRateLimited("k"), 200);
    assert.equal(queue.numRequeues("k"), 2);
    queue.forget("k");
    assert.equal(queue.addRateLimited("k"), 100);
    void queue.shutDown();
  });

  it("addAfter delays a key; a sooner add wins and a later one is dropped", async () => {
    const queue = new WorkQueue();
    const runs: { key: string; at: number }[] = [];
    const t0 = Date.now();
    queue.start(async (key) => {
      runs.push({ key, at: Date.now() - t0 });
    });

    queue.addAfter("late", 60);
    queue.addAfter("late", 500); // later: dropped
    queue.addAfter("soon", 500);
    queue.addAfter("soon", 30); // sooner: replaces
    queue.addAfter("now", 200);
    queue.add("now"); // immediate add supersedes the delay
    await until(() => runs.length === 3);
    await delay(600);
    assert.deepEqual(
      runs.map((r) => r.key),
      ["now", "soon", "late"],
    );
    assert.ok(runs[1]!.at >= 25 && runs[1]!.at < 400, `soon ran at ${runs[1]!.at}ms`);
    assert.ok(runs[2]!.at >= 55 && runs[2]!.at < 400, `late ran at ${runs[2]!.at}ms`);
    assert.equal(runs.length, 3, "no run for the dropped or superseded delays");
    await queue.shutDown();
  });

  it("a delayed add for a key that is already queued is dropped", () => {
    const queue = new WorkQueue();
    queue.add("k");
    queue.addAfter("k", 10);
    assert.equal(queue.delayedCount, 0);
    assert.equal(queue.length, 1);
    void queue.shutDown();
  });

  it("requeueAfterMs from the handler schedules the next run and resets failures", async () => {
    const queue = new WorkQueue({ backoff: { baseMs: 1, maxMs: 1 } });
    let attempts = 0;
    queue.start(async () => {
      attempts++;
      if (attempts === 1) throw new Error("first fails");
      if (attempts === 2) return { requeueAfterMs: 30 };
      return undefined;
    });
    queue.add("k");
    await until(() => attempts === 2);
    assert.equal(queue.numRequeues("k"), 0);
    assert.equal(queue.delayedCount, 1);
    await until(() => attempts === 3);
    await delay(50);
    assert.equal(attempts, 3);
    await queue.shutDown();
  });

  it("shutDown waits for running handlers, aborts their signal, and drops queued and delayed keys", async () => {
    const queue = new WorkQueue({ concurrency: 1 });
    const started: string[] = [];
    let finished = false;
    let sawAbort = false;
    queue.start(async (key, signal) => {
      started.push(key);
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      sawAbort = signal.aborted;
      await delay(20);
      finished = true;
    });
    queue.add("first");
    queue.add("second");
    queue.addAfter("third", 10);
    await until(() => started.length === 1);
    await queue.shutDown();
    assert.ok(finished, "shutDown resolved only after the running handler returned");
    assert.ok(sawAbort);
    await delay(30);
    assert.deepEqual(started, ["first"]);
    queue.add("after-shutdown");
    assert.equal(queue.length, 0, "queued keys were dropped and adds after shutdown are ignored");
    assert.equal(queue.delayedCount, 0);
  });

  it("reports metrics", async () => {
    const m = { adds: 0, retries: 0, work: 0, queue: 0, depths: [] as number[] };
    const queue = new WorkQueue({
      backoff: { baseMs: 1, maxMs: 1 },
      metrics: {
        added: () => m.adds++,
        retried: () => m.retries++,
        workDuration: () => m.work++,
        queueDuration: () => m.queue++,
        depth: (d) => m.depths.push(d),
      },
    });
    let attempts = 0;
    queue.add("a");
    queue.add("a");
    queue.add("b");
    queue.start(async (key) => {
      attempts++;
      if (key === "a" && attempts === 1) throw new Error("once");
    });
    await until(() => attempts === 3);
    await queue.shutDown();
    assert.equal(m.adds, 3, "two initial adds (a, b) plus the retry of a");
    assert.equal(m.retries, 1);
    assert.equal(m.work, 3);
    assert.equal(m.queue, 3);
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

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pause, systemClock } from "../../../src/util/clock.js";
import { pollUntil, PollTimeoutError } from "../../../src/util/poll.js";
import { FakeClock } from "../../support/fake-clock.js";

describe("pollUntil", () => {
  it("returns the first defined result, pausing the interval between attempts", async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const start = clock.now();
    const attempts: number[] = [];
    const value = await pollUntil(clock, { timeoutMs: 60_000, intervalMs: 1_000 }, async () => {
      attempts.push(clock.now() - start);
      return attempts.length === 4 ? "done" : undefined;
    });
    assert.equal(value, "done");
    assert.deepEqual(attempts, [0, 1_000, 2_000, 3_000]);
    assert.deepEqual(clock.sleeps, [1_000, 1_000, 1_000]);
  });

  it("a falsy but defined result ends the wait", async () => {
    const clock = new FakeClock({ autoAdvance: true });
    assert.equal(await pollUntil(clock, { timeoutMs: 1_000, intervalMs: 100 }, async () => false), false);
    assert.deepEqual(clock.sleeps, []);
  });

  it("never sleeps past the deadline and tries once more exactly at it, then throws onTimeout's error", async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const start = clock.now();
    const attempts: number[] = [];
    await assert.rejects(
      pollUntil(
        clock,
        { timeoutMs: 2_500, intervalMs: 1_000, onTimeout: () => new Error(`gave up after ${attempts.length} attempts`) },
        async () => {
          attempts.push(clock.now() - start);
          return undefined;
        },
      ),
      /gave up after 4 attempts/,
    );
    assert.deepEqual(attempts, [0, 1_000, 2_000, 2_500]);
    assert.deepEqual(clock.sleeps, [1_000, 1_000, 500]);
  });

  it("without onTimeout throws a PollTimeoutError; a timeout of 0 tries once", async () => {
    const clock = new FakeClock({ autoAdvance: true });
    let attempts = 0;
    await assert.rejects(
      pollUntil(clock, { timeoutMs: 0, intervalMs: 1_000 }, async () => {
        attempts++;
        return undefined;
      }),
      (err: unknown) => err instanceof PollTimeoutError && err.timeoutMs === 0,
    );
    assert.equal(attempts, 1);
  });

  it("an attempt's error ends the wait unchanged", async () => {
    const failure = new Error("forbidden");
    await assert.rejects(
      pollUntil(new FakeClock({ autoAdvance: true }), { timeoutMs: 10_000, intervalMs: 1 }, async () => {
        throw failure;
      }),
      (err: unknown) => err === failure,
    );
  });

  it("an abort during a pause ends the wait with the signal's reason, without another attempt", async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    let attempts = 0;
    const waiting = pollUntil(clock, { timeoutMs: 60_000, intervalMs: 5_000, signal: controller.signal }, async () => {
      attempts++;
      return undefined;
    });
    await clock.whenSleeping(1);
    await clock.advance(5_000);
    await clock.whenSleeping(1);
    assert.equal(attempts, 2);
    controller.abort(new Error("shutting down"));
    await assert.rejects(waiting, /shutting down/);
    assert.equal(attempts, 2);
    assert.equal(clock.pending, 0, "the aborted sleep is no longer scheduled");
  });

  it("runs on the system clock", async () => {
    let attempts = 0;
    const value = await pollUntil(systemClock, { timeoutMs: 60_000, intervalMs: 1 }, async () => (++attempts === 3 ? attempts : undefined));
    assert.equal(value, 3);
  });
});

describe("systemClock", () => {
  it("sleep rejects with the reason when aborted; pause returns instead", async () => {
    const controller = new AbortController();
    const sleeping = systemClock.sleep(60_000, controller.signal);
    const pausing = pause(systemClock, 60_000, controller.signal);
    controller.abort(new Error("stop"));
    await assert.rejects(sleeping, /stop/);
    await pausing;
    await assert.rejects(systemClock.sleep(1, controller.signal), /stop/, "an already aborted signal rejects at once");
  });

  it("a cancelled timer never fires; monotonic time does not go back", async () => {
    let fired = 0;
    const timer = systemClock.setTimer(0, () => fired++);
    timer.cancel();
    const before = systemClock.monotonic();
    await new Promise<void>((resolve) => systemClock.setTimer(1, resolve));
    assert.equal(fired, 0);
    assert.ok(systemClock.monotonic() >= before);
  });
});

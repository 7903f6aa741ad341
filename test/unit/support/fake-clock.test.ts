import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeClock } from "../../support/fake-clock.js";

describe("FakeClock", () => {
  it("stands still until advanced, then fires sleeps and timers in due order at their own time", async () => {
    const clock = new FakeClock({ start: 1_000 });
    const fired: string[] = [];
    void clock.sleep(300).then(() => fired.push(`sleep@${clock.now()}`));
    clock.setTimer(100, () => fired.push(`timer@${clock.now()}`));
    const cancelled = clock.setTimer(200, () => fired.push("cancelled"));
    cancelled.cancel();
    assert.equal(clock.pending, 2);
    assert.equal(clock.nextDue(), 1_100);
    await clock.advance(99);
    assert.deepEqual(fired, []);
    await clock.advance(1_000);
    assert.deepEqual(fired, ["timer@1100", "sleep@1300"]);
    assert.equal(clock.now(), 2_099);
    assert.equal(clock.pending, 0);
  });

  it("a timer scheduled by a fired one within the advanced span fires too", async () => {
    const clock = new FakeClock({ start: 0 });
    const fired: number[] = [];
    const tick = () => {
      fired.push(clock.now());
      if (fired.length < 5) clock.setTimer(10, tick);
    };
    clock.setTimer(10, tick);
    await clock.advance(35);
    assert.deepEqual(fired, [10, 20, 30]);
    await clock.advance(100);
    assert.deepEqual(fired, [10, 20, 30, 40, 50]);
  });

  it("autoAdvance: a sleep moves time at once", async () => {
    const clock = new FakeClock({ start: 0, autoAdvance: true });
    let timer = 0;
    clock.setTimer(50, () => (timer = clock.now()));
    await clock.sleep(100);
    assert.equal(clock.now(), 100);
    assert.equal(timer, 50);
    assert.deepEqual(clock.sleeps, [100]);
  });

  it("whenSleeping waits for loops to park; run drives them for a span of fake time", async () => {
    const clock = new FakeClock({ start: 0 });
    const ticks: number[] = [];
    const stop = new AbortController();
    const loop = (async () => {
      while (!stop.signal.aborted) {
        await new Promise((resolve) => setImmediate(resolve)); // some real work between sleeps
        ticks.push(clock.now());
        await clock.sleep(1_000, stop.signal).catch(() => undefined);
      }
    })();
    await clock.run(3_500, 1);
    assert.deepEqual(ticks, [0, 1_000, 2_000, 3_000]);
    assert.equal(clock.now(), 3_500);
    await clock.run(10_000, 1, () => ticks.length === 6);
    assert.equal(clock.now(), 5_000, "run stops as soon as the condition holds");
    stop.abort();
    await loop;
    await assert.rejects(clock.whenSleeping(1, 50), /expected 1 loops sleeping on the fake clock, 0 are/);
  });
});

// retryTransient on a FakeClock: which failures are retried, how long it
// pauses between calls, and when it gives up. No real time passes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { retryTransient } from "../../../src/apply/retry.js";
import { KubeApiError } from "../../../src/kube/errors.js";
import { FakeClock } from "../../support/fake-clock.js";

const apiError = (status: number, reason: string) => new KubeApiError({ status, reason, serverMessage: reason, operation: "get v1 configmaps x/y" });

describe("retryTransient", () => {
  it("retries 429, 5xx and network failures with backoff (100ms doubling, jittered to half–full) until a call succeeds", async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const start = clock.now();
    const failures = [apiError(429, "TooManyRequests"), apiError(503, "ServiceUnavailable"), apiError(0, "ConnectionFailed")];
    const calls: number[] = [];
    const value = await retryTransient(
      async () => {
        calls.push(clock.now() - start);
        const failure = failures.shift();
        if (failure) throw failure;
        return "ok";
      },
      { clock },
    );
    assert.equal(value, "ok");
    assert.equal(calls.length, 4);
    assert.equal(clock.sleeps.length, 3);
    clock.sleeps.forEach((ms, attempt) => {
      const full = 100 * 2 ** attempt;
      assert.ok(ms >= full / 2 && ms <= full, `pause ${attempt} was ${ms}ms, expected ${full / 2}–${full}ms`);
    });
    // Each call happens when the pause before it ends (up to float rounding at epoch scale).
    clock.sleeps.forEach((ms, i) => assert.ok(Math.abs(calls[i + 1]! - calls[i]! - ms) < 0.01, `call ${i + 1} came ${calls[i + 1]! - calls[i]!}ms after call ${i}, the pause was ${ms}ms`));
  });

  it("throws the last error once the attempts are used up, after attempts - 1 pauses", async () => {
    const clock = new FakeClock({ autoAdvance: true });
    let calls = 0;
    const err = apiError(500, "InternalError");
    await assert.rejects(
      retryTransient(
        async () => {
          calls++;
          throw err;
        },
        { clock, attempts: 3 },
      ),
      (thrown) => thrown === err,
    );
    assert.equal(calls, 3);
    assert.equal(clock.sleeps.length, 2);
  });

  it("throws a non-transient failure at once, without pausing", async () => {
    const clock = new FakeClock({ autoAdvance: true });
    let calls = 0;
    await assert.rejects(
      retryTransient(
        async () => {
          calls++;
          throw apiError(404, "NotFound");
        },
        { clock },
      ),
      /NotFound/,
    );
    assert.equal(calls, 1);
    assert.deepEqual(clock.sleeps, []);
  });

  it("an abort during a pause ends the retries with the signal's reason", async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    let calls = 0;
    const retrying = retryTransient(
      async () => {
        calls++;
        throw apiError(503, "ServiceUnavailable");
      },
      { clock, signal: controller.signal },
    );
    await clock.whenSleeping(1);
    controller.abort(new Error("shutting down"));
    await assert.rejects(retrying, /shutting down/);
    assert.equal(calls, 1);
  });
});

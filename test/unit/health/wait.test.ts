import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { HealthCheckError, Reasons, StageFailedError } from "../../../src/errors.js";
import {
  HealthStatus,
  objectId,
  verifyStageHealth,
  waitForHealthy,
  type LiveObjects,
  type ObjectHealth,
  type ObjectRef,
  type StageHealth,
} from "../../../src/health/index.js";
import { FakeClock } from "../../support/fake-clock.js";
import { readyDeployment } from "./fixtures.js";

/** Time that only moves when the loop sleeps. */
const fakeClock = () => new FakeClock({ autoAdvance: true });

const ref = (name: string): ObjectRef => ({ apiVersion: "apps/v1", kind: "Deployment", name, namespace: "apps" });

function pendingHealth(names: string[]): StageHealth {
  const pending: ObjectHealth[] = names.map((name) => ({
    object: ref(name),
    status: HealthStatus.InProgress,
    reason: "LessReady",
    message: "Ready: 0/2",
  }));
  return { ready: names.length === 0, pending, checked: names.length };
}

const NO_LIVE: LiveObjects = new Map();

describe("waitForHealthy", () => {
  it("returns as soon as the stage is ready, polling at the interval", async () => {
    const clock = fakeClock();
    const sequence = [pendingHealth(["web"]), pendingHealth(["web"]), pendingHealth([])];
    const seen: boolean[] = [];
    let polls = 0;
    const health = await waitForHealthy({
      poll: async () => {
        polls += 1;
        return NO_LIVE;
      },
      evaluate: () => sequence.shift() ?? pendingHealth([]),
      stageName: "app",
      timeoutMs: 60_000,
      intervalMs: 5_000,
      clock,
      onProgress: (h) => seen.push(h.ready),
    });
    assert.equal(health.ready, true);
    assert.equal(polls, 3);
    assert.deepEqual(clock.sleeps, [5_000, 5_000]);
    assert.deepEqual(seen, [false, false, true]);
  });

  it("a terminal failure ends the wait at once with StageFailedError naming the object and reason", async () => {
    const clock = fakeClock();
    let polls = 0;
    await assert.rejects(
      waitForHealthy({
        poll: async () => {
          polls += 1;
          return NO_LIVE;
        },
        evaluate: () => ({
          ready: false,
          checked: 2,
          pending: [],
          failed: { object: ref("web"), status: HealthStatus.Failed, reason: "ProgressDeadlineExceeded", message: "Progress deadline exceeded" },
        }),
        stageName: "app",
        timeoutMs: 15 * 60_000,
        intervalMs: 5_000,
        clock,
      }),
      (err: unknown) => {
        assert.ok(err instanceof StageFailedError);
        assert.equal(err.reason, Reasons.StageFailed);
        assert.equal(err.message, 'stage "app": Deployment/apps/web failed: Progress deadline exceeded');
        return true;
      },
    );
    assert.equal(polls, 1);
    assert.deepEqual(clock.sleeps, []);
  });

  it("times out with HealthCheckError listing the first five pending objects and how many more", async () => {
    const clock = fakeClock();
    const names = ["a", "b", "c", "d", "e", "f", "g"];
    await assert.rejects(
      waitForHealthy({
        poll: async () => NO_LIVE,
        evaluate: () => pendingHealth(names),
        stageName: "app",
        timeoutMs: 12_000,
        intervalMs: 5_000,
        clock,
      }),
      (err: unknown) => {
        assert.ok(err instanceof HealthCheckError);
        assert.equal(err.reason, Reasons.HealthCheckFailed);
        assert.match(err.message, /^stage "app": 7 objects not ready after 12s: /);
        assert.match(err.message, /Deployment\/apps\/a is InProgress \(Ready: 0\/2\); Deployment\/apps\/b/);
        assert.match(err.message, /Deployment\/apps\/e is InProgress \(Ready: 0\/2\), and 2 more\./);
        assert.doesNotMatch(err.message, /apps\/f/);
        assert.match(err.message, /readyChecks\.timeout/);
        return true;
      },
    );
    // Sleeps never overshoot the deadline; the last poll happens exactly at it.
    assert.deepEqual(clock.sleeps, [5_000, 5_000, 2_000]);
  });

  it("a timeout of zero checks once", async () => {
    const clock = fakeClock();
    await assert.rejects(
      waitForHealthy({ poll: async () => NO_LIVE, evaluate: () => pendingHealth(["web"]), stageName: "app", timeoutMs: 0, intervalMs: 5_000, clock }),
      /1 object not ready after 0ms: Deployment\/apps\/web is InProgress/,
    );
    assert.deepEqual(clock.sleeps, []);
  });

  it("stops when the signal aborts", async () => {
    const controller = new AbortController();
    const clock = fakeClock();
    let polls = 0;
    await assert.rejects(
      waitForHealthy({
        poll: async () => {
          polls += 1;
          if (polls === 2) controller.abort(new Error("controller shutting down"));
          return NO_LIVE;
        },
        evaluate: () => pendingHealth(["web"]),
        stageName: "app",
        timeoutMs: 60_000,
        intervalMs: 1_000,
        signal: controller.signal,
        clock,
      }),
      /controller shutting down/,
    );
    assert.equal(polls, 2);
  });

  it("propagates a poll failure unchanged", async () => {
    const failure = new Error("connection refused");
    await assert.rejects(
      waitForHealthy({
        poll: async () => {
          throw failure;
        },
        evaluate: () => pendingHealth([]),
        stageName: "app",
        timeoutMs: 60_000,
        intervalMs: 1_000,
        clock: fakeClock(),
      }),
      (err: unknown) => err === failure,
    );
  });

  it("works with the real clock", async () => {
    let polls = 0;
    const health = await waitForHealthy({
      poll: async () => {
        polls += 1;
        return NO_LIVE;
      },
      evaluate: () => pendingHealth(polls < 3 ? ["web"] : []),
      stageName: "app",
      timeoutMs: 60_000,
      intervalMs: 1,
    });
    assert.equal(health.ready, true);
    assert.equal(polls, 3);
  });

  it("evaluates with the clock's wall time", async () => {
    const clock = fakeClock();
    const seen: number[] = [];
    await waitForHealthy({
      poll: async () => NO_LIVE,
      evaluate: (_live, now) => {
        seen.push(now);
        return pendingHealth(seen.length < 3 ? ["web"] : []);
      },
      stageName: "app",
      timeoutMs: 60_000,
      intervalMs: 2_000,
      clock,
    });
    const start = seen[0]!;
    assert.deepEqual(seen, [start, start + 2_000, start + 4_000]);
  });
});

describe("verifyStageHealth", () => {
  const web = ref("web");
  const rolledOut = readyDeployment();

  it("with disableWait, does not read the cluster at all", async () => {
    const outcome = await verifyStageHealth({
      stageIndex: 0,
      stageName: "app",
      objects: [web],
      readyChecks: { disableWait: true },
      fetch: async () => {
        throw new Error("must not fetch");
      },
      timeoutMs: 1_000,
      intervalMs: 100,
      clock: fakeClock(),
    });
    assert.deepEqual(outcome, { waited: false });
  });

  it("fetches the planned targets and waits until they are Current", async () => {
    const fetched: ObjectRef[][] = [];
    let round = 0;
    const outcome = await verifyStageHealth({
      stageIndex: 0,
      stageName: "app",
      objects: [web],
      fetch: async (targets) => {
        fetched.push([...targets]);
        round += 1;
        return new Map([[objectId(web), round === 1 ? undefined : rolledOut]]);
      },
      timeoutMs: 60_000,
      intervalMs: 2_000,
      clock: fakeClock(),
    });
    assert.equal(outcome.waited, true);
    assert.equal(outcome.waited && outcome.health.ready, true);
    assert.deepEqual(fetched, [[web], [web]]);
  });

  it("times out naming a missing object as NotFound", async () => {
    await assert.rejects(
      verifyStageHealth({
        stageIndex: 0,
        stageName: "app",
        objects: [web],
        fetch: async () => new Map(),
        timeoutMs: 4_000,
        intervalMs: 2_000,
        clock: fakeClock(),
      }),
      /stage "app": 1 object not ready after 4s: Deployment\/apps\/web is NotFound \(object not found\)/,
    );
  });
});

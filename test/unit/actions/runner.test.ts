import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Action, StageSet, StageStatus } from "../../../src/api/types.js";
import { ActionLedger } from "../../../src/actions/ledger.js";
import { ActionFailedError, DEFAULT_ACTION_TIMEOUT_MS, runActionList, runOnFailure } from "../../../src/actions/runner.js";
import type { ActionEnv, ActionExecutor } from "../../../src/actions/types.js";
import { Reasons, StageFailedError, StageSetError } from "../../../src/errors.js";
import type { KubeClient } from "../../../src/kube/client.js";
import { silentLogger } from "../../../src/util/log.js";
import { FakeClock } from "../../support/fake-clock.js";

const stageSet = { apiVersion: "stages.metio.wtf/v1", kind: "StageSet", metadata: { name: "s", namespace: "n" }, spec: { stages: [] } } as unknown as StageSet;
const stage = { name: "app", sourceRef: { name: "app" } };

function env(signal = new AbortController().signal): Omit<ActionEnv, "list" | "timeoutMs"> {
  return {
    stageSet,
    stage,
    stageIndex: 0,
    revision: "r1",
    tenant: {} as KubeClient,
    render: () => Promise.reject(new Error("no sources in this test")),
    allowedHosts: [],
    clock: new FakeClock(),
    signal,
    log: silentLogger(),
  };
}

/** An executor that records the calls (name, timeout) and fails an action's first `failures[name]` attempts. */
function recording(failures: Record<string, number> = {}, reason: StageSetError["reason"] = Reasons.StageFailed) {
  const calls: string[] = [];
  const executor: ActionExecutor = async (action, e) => {
    calls.push(`${e.list}/${action.name}@${e.timeoutMs}`);
    const left = failures[action.name] ?? 0;
    if (left > 0) {
      failures[action.name] = left - 1;
      throw new StageSetError(reason, `boom ${action.name}`);
    }
    return { message: "ok" };
  };
  return { calls, executorFor: () => executor };
}

function ledgerFor(status: StageStatus, revision = "r1", writes: string[][] = []): ActionLedger {
  return new ActionLedger(status, revision, async () => void writes.push([...(status.executedActions ?? [])]));
}

const wait = (name: string, extra: Partial<Action> = {}): Action => ({ name, wait: { duration: "1s" }, ...extra });

describe("runActionList", () => {
  it("runs in order, records each in the ledger (status written) before the next starts, with the default 5m timeout", async () => {
    const status: StageStatus = { name: "app", phase: "Applying" };
    const writes: string[][] = [];
    const { calls, executorFor } = recording();
    await runActionList({ list: "pre", actions: [wait("a"), wait("b", { timeout: "30s" })], env: env(), ledger: ledgerFor(status, "r1", writes), executorFor });
    assert.deepEqual(calls, [`pre/a@${DEFAULT_ACTION_TIMEOUT_MS}`, "pre/b@30000"]);
    assert.deepEqual(writes, [["pre/a"], ["pre/a", "pre/b"]]);
    assert.equal(status.ledgerRevision, "r1");
  });

  it("skips what the ledger holds for the same revision, and starts a fresh ledger for a new one", async () => {
    const status: StageStatus = { name: "app", phase: "Applying", ledgerRevision: "r1", executedActions: ["pre/a"] };
    const same = recording();
    await runActionList({ list: "pre", actions: [wait("a"), wait("b")], env: env(), ledger: ledgerFor(status), executorFor: same.executorFor });
    assert.deepEqual(same.calls, [`pre/b@${DEFAULT_ACTION_TIMEOUT_MS}`]);
    const next = recording();
    await runActionList({ list: "pre", actions: [wait("a"), wait("b")], env: env(), ledger: ledgerFor(status, "r2"), executorFor: next.executorFor });
    assert.equal(next.calls.length, 2, "a new revision runs every action again");
    assert.deepEqual(status.executedActions, ["pre/a", "pre/b"]);
    assert.equal(status.ledgerRevision, "r2");
  });

  it("retries: retries: 2 runs three times, then fails naming stage, list, action and cause", async () => {
    const status: StageStatus = { name: "app", phase: "Applying" };
    const { calls, executorFor } = recording({ flaky: 5 });
    await assert.rejects(
      runActionList({ list: "pre", actions: [wait("flaky", { retries: 2 }), wait("never")], env: env(), ledger: ledgerFor(status), executorFor }),
      (err: unknown) => {
        assert.ok(err instanceof ActionFailedError);
        assert.equal(err.reason, Reasons.StageFailed);
        assert.equal(err.message, 'stage "app": pre action "flaky" failed (after 3 attempts): boom flaky');
        return true;
      },
    );
    assert.equal(calls.length, 3);
    assert.deepEqual(status.executedActions, [], "a failed action is not recorded, and the next never ran");
  });

  it("a retry that succeeds records the action; RBACDenied is not retried and keeps its reason", async () => {
    const ok = recording({ flaky: 1 });
    const status: StageStatus = { name: "app", phase: "Applying" };
    await runActionList({ list: "post", actions: [wait("flaky", { retries: 1 })], env: env(), ledger: ledgerFor(status), executorFor: ok.executorFor });
    assert.deepEqual(status.executedActions, ["post/flaky"]);
    const denied = recording({ rbac: 9 }, Reasons.RBACDenied);
    await assert.rejects(
      runActionList({ list: "post", actions: [wait("rbac", { retries: 3 })], env: env(), ledger: ledgerFor({ name: "app", phase: "Applying" }), executorFor: denied.executorFor }),
      (err: unknown) => err instanceof ActionFailedError && err.reason === Reasons.RBACDenied,
    );
    assert.equal(denied.calls.length, 1);
  });

  it("an aborted signal (superseded input) propagates its reason and records nothing", async () => {
    const controller = new AbortController();
    const reason = new StageFailedError("superseded");
    const executor: ActionExecutor = async () => {
      controller.abort(reason);
      throw new Error("aborted request");
    };
    const status: StageStatus = { name: "app", phase: "Applying" };
    await assert.rejects(runActionList({ list: "pre", actions: [wait("a")], env: env(controller.signal), ledger: ledgerFor(status), executorFor: () => executor }), (err) => err === reason);
    assert.deepEqual(status.executedActions, []);
  });
});

describe("runOnFailure", () => {
  it("runs every action best-effort and returns the failures", async () => {
    const status: StageStatus = { name: "app", phase: "Failed" };
    const { calls, executorFor } = recording({ second: 1 });
    const failures = await runOnFailure({ actions: [wait("first"), wait("second"), wait("third")], env: env(), ledger: ledgerFor(status), executorFor });
    assert.deepEqual(calls.map((c) => c.split("@")[0]), ["onFailure/first", "onFailure/second", "onFailure/third"]);
    assert.deepEqual(failures.map((f) => f.action), ["second"]);
    assert.deepEqual(status.executedActions, ["onFailure/first", "onFailure/third"]);
  });
});

describe("ActionLedger", () => {
  it("is cleared once on request, at the same revision", () => {
    const status: StageStatus = { name: "app", phase: "Ready", ledgerRevision: "r1", executedActions: ["pre/a"] };
    const ledger = new ActionLedger(status, "r1", async () => {}, { clear: true });
    assert.equal(ledger.has("pre", "a"), false);
    assert.deepEqual(status.executedActions, []);
  });
});

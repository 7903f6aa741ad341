import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StageSet } from "../../../src/api/types.js";
import { ChangeSet } from "../../../src/apply/change-set.js";
import {
  intervalsOf,
  inventoryNameCollision,
  isSteadyState,
  jittered,
  MAX_REQUEUE_MS,
  reconcileStageRequest,
  succeededMessage,
  supersededBy,
  unsupportedFields,
  unsupportedMessage,
} from "../../../src/controller/decisions.js";
import { SupersededError, ActiveRuns } from "../../../src/controller/supersede.js";
import { InvalidSpecError } from "../../../src/errors.js";

function stageSet(name: string, stages: string[], extra: Partial<StageSet["spec"]> = {}, created = "2026-01-01T00:00:00Z"): StageSet {
  return {
    apiVersion: "stages.metio.wtf/v1",
    kind: "StageSet",
    metadata: { name, namespace: "apps", generation: 3, creationTimestamp: created },
    spec: { stages: stages.map((s) => ({ name: s, sourceRef: { name: s } })), ...extra },
  } as StageSet;
}

describe("intervalsOf", () => {
  it("defaults retry to interval and takes the shorter drift interval", () => {
    assert.deepEqual(intervalsOf(stageSet("a", ["x"], { interval: "10m", driftDetectionInterval: "1m" }), 1), { next: 60_000, retry: 600_000 });
    assert.deepEqual(intervalsOf(stageSet("a", ["x"]), 5_000), { next: 5_000, retry: 5_000 });
  });

  it("refuses an interval that passes the schema but overflows, naming the field (InvalidSpec)", () => {
    assert.throws(() => intervalsOf(stageSet("a", ["x"], { interval: "9999999h" }), 1), (err: unknown) => {
      assert.ok(err instanceof InvalidSpecError);
      assert.match(err.message, /^spec\.interval: "9999999h" is too long/);
      return true;
    });
    assert.throws(() => intervalsOf(stageSet("a", ["x"], { retryInterval: "0s" }), 1), /spec\.retryInterval: "0s" must be longer than zero/);
  });
});

describe("jittered", () => {
  it("spreads ±5% and caps at the longest timer Node honours", () => {
    assert.equal(jittered(100_000, 0.05, () => 0), 95_000);
    assert.equal(jittered(100_000, 0.05, () => 0.5), 100_000);
    assert.equal(jittered(100_000, 0.05, () => 0.999999), 105_000);
    assert.equal(jittered(3_600_000 * 1000, 0.05, () => 0.5), MAX_REQUEUE_MS);
  });
});

describe("inventoryNameCollision", () => {
  it("refuses the later of web/prod-eu and web-prod/eu, naming both", () => {
    const first = stageSet("web", ["prod-eu"], {}, "2026-01-01T00:00:00Z");
    const second = stageSet("web-prod", ["eu"], {}, "2026-01-02T00:00:00Z");
    assert.equal(inventoryNameCollision(first, [first, second]), undefined);
    const message = inventoryNameCollision(second, [first, second]);
    assert.match(message ?? "", /stage "eu" of StageSet apps\/web-prod and stage "prod-eu" of StageSet apps\/web .*StageInventory web-prod-eu-0/);
  });

  it("ignores other namespaces and itself", () => {
    const other = { ...stageSet("web", ["prod-eu"]), metadata: { name: "web", namespace: "elsewhere", creationTimestamp: "2020-01-01T00:00:00Z" } } as StageSet;
    assert.equal(inventoryNameCollision(stageSet("web-prod", ["eu"]), [other]), undefined);
  });
});

describe("supersededBy", () => {
  const input = { generation: 3, requestedAt: "a", revisions: new Map([["apps/app", "v1"]]) };

  it("is undefined while the input is current", () => {
    const latest = stageSet("s", ["app"]);
    latest.metadata.annotations = { "reconcile.fluxcd.io/requestedAt": "a" };
    assert.equal(supersededBy(input, latest, () => "v1"), undefined);
    assert.equal(supersededBy(input, undefined, () => undefined), undefined);
  });

  it("names a new source revision, a spec change and a reconcile request", () => {
    assert.match(supersededBy(input, undefined, () => "v2") ?? "", /source apps\/app published revision v2, superseding v1/);
    const edited = stageSet("s", ["app"]);
    edited.metadata.generation = 4;
    assert.match(supersededBy(input, edited, () => "v1") ?? "", /generation 3 → 4/);
    const requested = stageSet("s", ["app"]);
    requested.metadata.annotations = { "reconcile.fluxcd.io/requestedAt": "b" };
    assert.match(supersededBy(input, requested, () => "v1") ?? "", /reconcile was requested/);
  });

  it("aborts the registered run's signal with a SupersededError when poked", () => {
    const runs = new ActiveRuns();
    let revision = "v1";
    const run = runs.begin("apps/s", () => supersededBy(input, undefined, () => revision));
    runs.poke();
    assert.equal(run.signal.aborted, false);
    revision = "v2";
    runs.poke("apps/other");
    assert.equal(run.signal.aborted, false, "a poke for another StageSet does not touch this run");
    runs.poke("apps/s");
    assert.ok(run.signal.reason instanceof SupersededError);
    assert.equal(run.signal.reason.reason, "Progressing");
    run.end();
    assert.equal(runs.size, 0);
  });
});

describe("isSteadyState and succeededMessage", () => {
  it("is steady only when Ready at this generation with every stage Ready at the resolved revision", () => {
    const s = stageSet("s", ["a", "b"]);
    s.status = {
      observedGeneration: 3,
      conditions: [{ type: "Ready", status: "True", reason: "Succeeded", message: "", lastTransitionTime: "" }],
      stages: [
        { name: "a", phase: "Ready", appliedRevision: "v1" },
        { name: "b", phase: "Ready", appliedRevision: "v7" },
      ],
    };
    assert.equal(isSteadyState(s, ["v1", "v7"]), true);
    assert.equal(isSteadyState(s, ["v1", "v8"]), false);
    s.metadata.generation = 4;
    assert.equal(isSteadyState(s, ["v1", "v7"]), false);
  });

  it("names each source once with its revision", () => {
    const artifact = (revision: string) => ({ revision, url: "", digest: "" });
    assert.equal(
      succeededMessage(3, [
        { key: "apps/crds", artifact: artifact("v1") },
        { key: "apps/app", artifact: artifact("main@sha1:abc") },
        { key: "apps/app", artifact: artifact("main@sha1:abc") },
      ] as never),
      "applied 3 stage(s): apps/crds at v1, apps/app at main@sha1:abc",
    );
  });
});

describe("ChangeSet", () => {
  it("summarizes what changed and stays silent on a no-op", () => {
    const cs = new ChangeSet();
    const ref = (name: string) => ({ apiVersion: "v1", kind: "ConfigMap", namespace: "apps", name });
    cs.add(ref("same"), "unchanged");
    assert.equal(cs.summary(), "");
    assert.equal(cs.changed, false);
    cs.add(ref("a"), "created");
    cs.add(ref("b"), "created");
    cs.add(ref("c"), "configured");
    cs.add(ref("d"), "deleted");
    cs.add(ref("e"), "skipped", "immutable");
    assert.equal(cs.summary(), "created 2, configured 1, pruned 1, skipped 1 (KeepExisting)");
    assert.deepEqual(cs.describeChanges().created, ["ConfigMap apps/a", "ConfigMap apps/b"]);
  });
});

describe("unsupportedFields (fail closed)", () => {
  it("names every field the controller cannot honour yet, and nothing for a plain spec", () => {
    assert.deepEqual(unsupportedFields(stageSet("a", ["x"]).spec), []);
    assert.equal(unsupportedMessage(stageSet("a", ["x"]).spec), undefined);
    const spec = stageSet("a", ["x", "y"], {
      decryption: { provider: "sops" },
      updateWindows: [{ type: "Deny", from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z" }],
      version: { value: "1.0.0" },
      migrations: [{ name: "m", to: "1.0.0", stage: "x", actions: [{ name: "w", wait: { duration: "1s" } }] }],
      rollbackOnFailure: true,
    }).spec;
    spec.stages[1]!.actions = { pre: [{ name: "gate", wait: { duration: "1s" } }], post: [] };
    assert.deepEqual(unsupportedFields(spec), [
      "spec.decryption (SOPS decryption)",
      "spec.rollbackOnFailure",
      "spec.migrations (their actions need an action executor)",
      "spec.stages[1].actions.pre",
    ]);
    assert.deepEqual(unsupportedFields(spec, { actions: true, decryption: true, rollback: true }), [], "windows and versions are always honoured");
    assert.match(unsupportedMessage(spec) ?? "", /nothing was applied rather than ignoring them; remove these fields/);
  });
});

describe("reconcileStageRequest", () => {
  it("is handled once per annotation value; the stage is the part before @", () => {
    const s = stageSet("web", ["app"]);
    assert.equal(reconcileStageRequest(s), undefined);
    s.metadata.annotations = { "stages.metio.wtf/reconcile-stage": "app@2026-11-29T10:00:00Z" };
    assert.deepEqual(reconcileStageRequest(s), { stage: "app", handled: "app@2026-11-29T10:00:00Z" });
    s.status = { lastHandledReconcileStage: "app@2026-11-29T10:00:00Z" };
    assert.equal(reconcileStageRequest(s), undefined, "handled: a later plain reconcile does not clear the ledger again");
    s.metadata.annotations = { "stages.metio.wtf/reconcile-stage": "app" };
    assert.deepEqual(reconcileStageRequest(s), { stage: "app", handled: "app" });
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { ReadyChecks } from "../../../src/api/types.js";
import { HealthStatus, objectId, planStageHealth, stageHealth, type ObjectRef } from "../../../src/health/index.js";
import { readyDeployment } from "./fixtures.js";

type Obj = Record<string, unknown>;

const web: ObjectRef = { apiVersion: "apps/v1", kind: "Deployment", name: "web", namespace: "apps" };
const settings: ObjectRef = { apiVersion: "v1", kind: "ConfigMap", name: "settings", namespace: "apps" };
const db: ObjectRef = { apiVersion: "db.example/v1", kind: "Database", name: "orders", namespace: "apps" };
const crd: ObjectRef = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name: "databases.db.example" };

function rollingDeployment(): Obj {
  const d = readyDeployment();
  (d.status as Obj).readyReplicas = 0;
  return d;
}

const configMap: Obj = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "apps" }, data: {} };

function database(phase: string | undefined): Obj {
  return { apiVersion: "db.example/v1", kind: "Database", metadata: { name: "orders", namespace: "apps" }, spec: {}, ...(phase ? { status: { phase } } : {}) };
}

function live(entries: [ObjectRef, Obj | undefined][]): Map<string, Obj | undefined> {
  return new Map(entries.map(([ref, obj]) => [objectId(ref), obj]));
}

function plan(objects: ObjectRef[], readyChecks?: ReadyChecks) {
  return planStageHealth({ stageIndex: 0, stageName: "app", objects, ...(readyChecks ? { readyChecks } : {}) });
}

const databaseExprs: ReadyChecks["exprs"] = [
  {
    apiVersion: "db.example/v1",
    kind: "Database",
    current: "status.phase == 'Running'",
    inProgress: "status.phase in ['Pending', 'Provisioning']",
    failed: "status.phase == 'Failed'",
  },
];

describe("planStageHealth", () => {
  it("checks every applied object by default", () => {
    const p = plan([web, settings]);
    assert.deepEqual(p.targets, [web, settings]);
    assert.equal(p.waitDisabled, false);
  });

  it("with checks, checks only the named objects, including ones the stage did not apply", () => {
    const p = plan([web, settings], { checks: [crd, web] });
    assert.deepEqual(p.targets, [crd, web]);
  });

  it("an empty checks list means the default", () => {
    assert.deepEqual(plan([web], { checks: [] }).targets, [web]);
  });

  it("lists an object once even if named twice", () => {
    assert.deepEqual(plan([web], { checks: [web, { ...web, apiVersion: "apps/v1beta2" }] }).targets, [web]);
  });

  it("reports disableWait and still compiles the expressions", () => {
    assert.equal(plan([web], { disableWait: true }).waitDisabled, true);
    assert.throws(
      () => plan([web], { disableWait: true, exprs: [{ apiVersion: "db.example/v1", kind: "Database", current: "status.phase ==" }] }),
      /spec\.stages\[0\]\.readyChecks\.exprs\[0\]\.current/,
    );
  });
});

describe("stageHealth", () => {
  it("is ready when every target is Current; a ConfigMap needs no waiting", () => {
    const health = stageHealth(plan([web, settings]), live([[web, readyDeployment()], [settings, configMap]]));
    assert.deepEqual(health, { ready: true, pending: [], checked: 2 });
  });

  it("lists the objects still in progress with their status and message", () => {
    const health = stageHealth(plan([web, settings]), live([[web, rollingDeployment()], [settings, configMap]]));
    assert.equal(health.ready, false);
    assert.equal(health.failed, undefined);
    assert.deepEqual(health.pending, [{ object: web, status: HealthStatus.InProgress, reason: "LessReady", message: "Ready: 0/1" }]);
  });

  it("a missing object is NotFound and pending, not failed", () => {
    const health = stageHealth(plan([web]), live([]));
    assert.equal(health.ready, false);
    assert.equal(health.failed, undefined);
    assert.equal(health.pending[0]?.status, HealthStatus.NotFound);
  });

  it("with checks, an unhealthy object outside the checks does not hold the stage", () => {
    const health = stageHealth(plan([web, settings], { checks: [settings] }), live([[web, rollingDeployment()], [settings, configMap]]));
    assert.equal(health.ready, true);
  });

  it("a Failed object is reported as the terminal failure", () => {
    const failing = readyDeployment();
    (failing.status as Obj).conditions = [
      { type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: 'ReplicaSet "web-1" has timed out progressing.' },
    ];
    const health = stageHealth(plan([settings, web]), live([[web, failing], [settings, configMap]]));
    assert.equal(health.ready, false);
    assert.equal(health.failed?.object, web);
    assert.equal(health.failed?.status, HealthStatus.Failed);
    assert.match(health.failed?.message ?? "", /Progress deadline exceeded/);
  });

  describe("with exprs, matching objects use the expression instead of kstatus", () => {
    const p = plan([web, db], { exprs: databaseExprs });

    for (const [phase, expected] of [
      ["Running", HealthStatus.Current],
      ["Provisioning", HealthStatus.InProgress],
      ["Failed", HealthStatus.Failed],
      ["Upgrading", HealthStatus.InProgress],
    ] as const) {
      it(`Database phase ${phase} -> ${expected}`, () => {
        const health = stageHealth(p, live([[web, readyDeployment()], [db, database(phase)]]));
        const status = health.pending.find((e) => e.object === db)?.status ?? HealthStatus.Current;
        assert.equal(status, expected);
        assert.equal(health.ready, expected === HealthStatus.Current);
        assert.equal(health.failed?.object, expected === HealthStatus.Failed ? db : undefined);
      });
    }

    it("a Database without status yet is Unknown and pending (kstatus alone would call it Current)", () => {
      const health = stageHealth(p, live([[web, readyDeployment()], [db, database(undefined)]]));
      assert.equal(health.ready, false);
      assert.equal(health.pending[0]?.status, HealthStatus.Unknown);
      assert.match(health.pending[0]?.message ?? "", /status/);
    });

    it("kinds without an expression still use kstatus", () => {
      const health = stageHealth(p, live([[web, rollingDeployment()], [db, database("Running")]]));
      assert.deepEqual(health.pending.map((e) => e.object), [web]);
    });
  });

  it("checks and exprs together: only the checked objects, with expressions where they match", () => {
    const health = stageHealth(plan([web, db], { checks: [db], exprs: databaseExprs }), live([[web, rollingDeployment()], [db, database("Provisioning")]]));
    assert.deepEqual(health.pending.map((e) => [e.object, e.status]), [[db, HealthStatus.InProgress]]);
  });
});

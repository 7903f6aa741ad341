// A Job with ttlSecondsAfterFinished is deleted by the TTL controller once it
// finishes; its absence is not something to wait for (Flux's rule in
// fluxcd/pkg ssa WaitForSet).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { KubeObject } from "../../../src/api/types.js";
import { HealthStatus, jobsWithTTL, objectId, planStageHealth, stageHealth, type ObjectRef } from "../../../src/health/index.js";

type Obj = Record<string, unknown>;

const migrate: ObjectRef = { apiVersion: "batch/v1", kind: "Job", name: "migrate", namespace: "apps" };
const settings: ObjectRef = { apiVersion: "v1", kind: "ConfigMap", name: "settings", namespace: "apps" };

function job(spec: Obj, status: Obj): Obj {
  return { apiVersion: "batch/v1", kind: "Job", metadata: { name: "migrate", namespace: "apps", generation: 1 }, spec, status };
}
const notStarted = (spec: Obj = {}) => job(spec, {});
const complete = (spec: Obj = {}) =>
  job(spec, { succeeded: 1, startTime: "2025-01-01T00:00:00Z", conditions: [{ type: "Complete", status: "True", reason: "", message: "" }] });
const configMap: Obj = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "apps" } };

const live = (entries: [ObjectRef, Obj | undefined][]) => new Map(entries.map(([ref, obj]) => [objectId(ref), obj]));
const plan = (objects: ObjectRef[], ttl?: ObjectRef[]) =>
  planStageHealth({ stageIndex: 0, stageName: "migrate", objects, ...(ttl ? { jobsWithTTL: ttl } : {}) });

describe("a Job deleted after it finished", () => {
  it("applied with ttlSecondsAfterFinished and already gone at the first look: Current, not NotFound", () => {
    const p = plan([migrate, settings], [migrate]);
    const health = stageHealth(p, live([[migrate, undefined], [settings, configMap]]));
    assert.equal(health.ready, true, JSON.stringify(health.pending));
  });

  it("seen with ttlSecondsAfterFinished (not yet finished), then gone: Current", () => {
    const p = plan([migrate]);
    const first = stageHealth(p, live([[migrate, notStarted({ ttlSecondsAfterFinished: 0 })]]));
    assert.equal(first.ready, false);
    assert.equal(first.pending[0]?.reason, "JobNotStarted");
    const second = stageHealth(p, live([[migrate, undefined]]));
    assert.equal(second.ready, true);
  });

  it("seen finished, then gone: Current", () => {
    const p = plan([migrate, settings]);
    // Not ready yet: the ConfigMap is missing.
    assert.equal(stageHealth(p, live([[migrate, complete()], [settings, undefined]])).ready, false);
    const health = stageHealth(p, live([[migrate, undefined], [settings, undefined]]));
    assert.deepEqual(health.pending.map((h) => h.object), [settings], "only the ConfigMap is still awaited");
  });

  it("a Job never seen and applied without the field is NotFound, as before", () => {
    const health = stageHealth(plan([migrate]), live([[migrate, undefined]]));
    assert.equal(health.ready, false);
    assert.equal(health.pending[0]?.status, HealthStatus.NotFound);
  });

  it("a Job seen not started without the field, then gone, is NotFound (someone deleted it)", () => {
    const p = plan([migrate]);
    stageHealth(p, live([[migrate, notStarted()]]));
    assert.equal(stageHealth(p, live([[migrate, undefined]])).pending[0]?.status, HealthStatus.NotFound);
  });

  it("other kinds named like a Job, or gone objects of other kinds, are not excused", () => {
    const fake: ObjectRef = { apiVersion: "example.com/v1", kind: "Job", name: "migrate", namespace: "apps" };
    const p = plan([fake, settings], [fake]);
    const health = stageHealth(p, live([[fake, { ...complete({ ttlSecondsAfterFinished: 5 }), apiVersion: "example.com/v1" }], [settings, undefined]]));
    assert.equal(health.ready, false);
    assert.equal(stageHealth(p, live([[fake, undefined], [settings, configMap]])).pending[0]?.status, HealthStatus.NotFound);
  });
});

describe("jobsWithTTL", () => {
  it("picks the batch Jobs whose spec sets ttlSecondsAfterFinished, 0 included", () => {
    const objects: KubeObject[] = [
      { apiVersion: "batch/v1", kind: "Job", metadata: { name: "a", namespace: "apps" }, spec: { ttlSecondsAfterFinished: 0 } },
      { apiVersion: "batch/v1", kind: "Job", metadata: { name: "b", namespace: "apps" }, spec: {} },
      { apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "c", namespace: "apps" }, spec: { jobTemplate: { spec: { ttlSecondsAfterFinished: 5 } } } },
      { apiVersion: "example.com/v1", kind: "Job", metadata: { name: "d" }, spec: { ttlSecondsAfterFinished: 5 } },
    ];
    assert.deepEqual(jobsWithTTL(objects), [{ apiVersion: "batch/v1", kind: "Job", name: "a", namespace: "apps" }]);
  });
});

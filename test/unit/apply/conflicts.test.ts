import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decideConflict, holdsData, isImmutableFieldError } from "../../../src/apply/conflicts.js";
import { KubeApiError } from "../../../src/kube/errors.js";

const job = { apiVersion: "batch/v1", kind: "Job", name: "migrate", namespace: "payments" };
const web = { apiVersion: "apps/v1", kind: "Deployment", name: "web", namespace: "payments" };

describe("decideConflict", () => {
  it("fails by default", () => {
    assert.deepEqual(decideConflict(job, undefined, false), { action: "Fail", allowDataLoss: false });
  });

  it("treats force as a Recreate default, and an explicit default wins over force", () => {
    assert.equal(decideConflict(job, undefined, true).action, "Recreate");
    assert.equal(decideConflict(job, { default: "KeepExisting" }, true).action, "KeepExisting");
  });

  it("takes the first rule whose partial target matches", () => {
    const policy = {
      default: "Fail" as const,
      rules: [
        { target: { apiVersion: "batch/v1", kind: "Job" }, action: "Recreate" as const },
        { target: { kind: "Deployment", name: "web" }, action: "KeepExisting" as const },
        { target: {}, action: "Recreate" as const },
      ],
    };
    assert.deepEqual(decideConflict(job, policy, false), { action: "Recreate", ruleIndex: 0, allowDataLoss: false });
    assert.deepEqual(decideConflict(web, policy, false), { action: "KeepExisting", ruleIndex: 1, allowDataLoss: false });
    assert.equal(decideConflict({ ...web, name: "api" }, policy, false).ruleIndex, 2);
    assert.equal(decideConflict(job, { rules: [{ target: { namespace: "other" }, action: "Recreate" }] }, false).action, "Fail");
  });

  it("carries allowDataLoss only from the matching rule", () => {
    const pvc = { apiVersion: "v1", kind: "PersistentVolumeClaim", name: "scratch", namespace: "p" };
    assert.equal(decideConflict(pvc, { rules: [{ target: { kind: "PersistentVolumeClaim" }, action: "Recreate", allowDataLoss: true }] }, false).allowDataLoss, true);
    assert.equal(decideConflict(pvc, { default: "Recreate" }, true).allowDataLoss, false);
    assert.ok(holdsData(pvc));
    assert.ok(holdsData({ apiVersion: "v1", kind: "PersistentVolume", name: "pv" }));
    assert.ok(!holdsData(job));
  });
});

describe("isImmutableFieldError", () => {
  const invalid = (message: string, causes: { field?: string; message?: string }[] = []) =>
    new KubeApiError({ status: 422, reason: "Invalid", serverMessage: message, operation: "apply", causes });

  it("recognizes the API server's immutable-field refusals", () => {
    assert.ok(isImmutableFieldError(invalid('Job.batch "migrate" is invalid: spec.template: Invalid value: core.PodTemplateSpec{}: field is immutable')));
    assert.ok(isImmutableFieldError(invalid('Service "web" is invalid: spec.clusterIPs[0]: Invalid value: []string{"10.0.0.9"}: may not change once set')));
    assert.ok(isImmutableFieldError(invalid('PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests')));
    assert.ok(isImmutableFieldError(invalid('ConfigMap "c" is invalid: data: Forbidden: field is immutable when `immutable` is set')));
    assert.ok(isImmutableFieldError(invalid('StatefulSet.apps "db" is invalid: spec: Forbidden: updates to statefulset spec for fields other than \'replicas\' are forbidden')));
  });

  it("leaves other failures alone", () => {
    assert.ok(!isImmutableFieldError(invalid('Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0')));
    assert.ok(!isImmutableFieldError(new KubeApiError({ status: 409, reason: "Conflict", serverMessage: "field is immutable", operation: "apply" })));
    assert.ok(!isImmutableFieldError(new Error("field is immutable")));
  });
});

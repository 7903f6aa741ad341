import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StageSet } from "../../../src/api/types.js";
import { ADMISSION_API_VERSION, MalformedReviewError, reviewAdmission, type AdmissionRequest } from "../../../src/webhook/admission.js";
import { fullStageSet } from "../api/fixtures.js";

const STAGESET_KIND = { group: "stages.metio.wtf", version: "v1", kind: "StageSet" };

function review(request: Partial<AdmissionRequest>): unknown {
  return { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", request: { uid: "uid-1", kind: STAGESET_KIND, operation: "CREATE", ...request } };
}

function invalid(): StageSet {
  const obj = fullStageSet();
  obj.spec.migrations![0]!.stage = "no-such-stage";
  return obj;
}

describe("reviewAdmission", () => {
  it("allows a valid StageSet on CREATE, echoing the uid", () => {
    const { review: answer, validated } = reviewAdmission(review({ object: fullStageSet() }));
    assert.equal(validated, true);
    assert.deepEqual(answer, { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "uid-1", allowed: true } });
  });

  it("denies an invalid StageSet with 422 Invalid, the field in the message and one cause per issue", () => {
    const { response } = reviewAdmission(review({ object: invalid() })).review;
    assert.equal(response.allowed, false);
    assert.equal(response.uid, "uid-1");
    const status = response.status!;
    assert.equal(status.code, 422);
    assert.equal(status.reason, "Invalid");
    assert.equal(status.status, "Failure");
    assert.match(status.message, /^StageSet\.stages\.metio\.wtf "payments" is invalid: spec\.migrations\[0\]\.stage: names no stage of this StageSet \("no-such-stage"\)/);
    assert.deepEqual(status.details?.causes.map((c) => [c.reason, c.field]), [["FieldValueInvalid", "spec.migrations[0].stage"]]);
    assert.equal(status.details?.kind, "StageSet");
    assert.equal(status.details?.group, "stages.metio.wtf");
    assert.equal(status.details?.name, "payments");
  });

  it("lists several problems in brackets, like the API server's aggregate field errors", () => {
    const obj = invalid();
    obj.spec.version = { fromArtifact: { stage: "missing", path: "VERSION" } };
    const status = reviewAdmission(review({ object: obj })).review.response.status!;
    assert.match(status.message, /is invalid: \[spec\.version\.fromArtifact\.stage: .*, spec\.migrations\[0\]\.stage: .*\]$/);
    assert.deepEqual(status.details?.causes.map((c) => c.field), ["spec.version.fromArtifact.stage", "spec.migrations[0].stage"]);
  });

  it("denies an UPDATE that makes the spec invalid", () => {
    const { response } = reviewAdmission(review({ operation: "UPDATE", object: invalid(), oldObject: fullStageSet() })).review;
    assert.equal(response.allowed, false);
    assert.equal(response.status?.code, 422);
  });

  it("allows an UPDATE that leaves an invalid spec as it was, with the problems as warnings", () => {
    const { response } = reviewAdmission(review({ operation: "UPDATE", object: { ...invalid(), metadata: { name: "payments", labels: { a: "b" } } }, oldObject: invalid() })).review;
    assert.equal(response.allowed, true);
    assert.equal(response.warnings?.length, 1);
    assert.match(response.warnings![0]!, /spec unchanged but invalid: spec\.migrations\[0\]\.stage/);
  });

  it("allows an UPDATE of a StageSet being deleted (finalizer removal)", () => {
    const obj = invalid();
    obj.metadata.deletionTimestamp = "2024-01-01T00:00:00Z";
    const { review: answer, validated } = reviewAdmission(review({ operation: "UPDATE", object: obj, oldObject: fullStageSet() }));
    assert.equal(answer.response.allowed, true);
    assert.equal(validated, false);
  });

  it("allows DELETE, CONNECT, subresources and other kinds without validating", () => {
    const never = () => {
      throw new Error("must not validate");
    };
    for (const request of [
      { operation: "DELETE", oldObject: invalid() },
      { operation: "CONNECT" },
      { operation: "UPDATE", subResource: "status", object: invalid(), oldObject: invalid() },
      { kind: { group: "", version: "v1", kind: "ConfigMap" }, object: { apiVersion: "v1", kind: "ConfigMap" } },
      { kind: { group: "stages.metio.wtf", version: "v1", kind: "StageInventory" }, object: {} },
    ]) {
      const { review: answer, validated } = reviewAdmission(review(request), never);
      assert.equal(answer.response.allowed, true, JSON.stringify(request));
      assert.equal(validated, false);
    }
  });

  it("refuses what is not an admission.k8s.io/v1 AdmissionReview with a uid", () => {
    for (const body of [
      null,
      [],
      "text",
      { apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: { uid: "u" } },
      { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview" },
      { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", request: { kind: STAGESET_KIND } },
    ]) {
      assert.throws(() => reviewAdmission(body), MalformedReviewError, JSON.stringify(body));
    }
  });

  it("validates the object with the injected validator (the default is validateStageSet)", () => {
    const seen: unknown[] = [];
    const obj = fullStageSet();
    const answer = reviewAdmission(review({ object: obj }), (o) => {
      seen.push(o);
      return [{ field: "", message: "whole object refused" }];
    }).review.response;
    assert.deepEqual(seen, [obj]);
    assert.equal(answer.allowed, false);
    assert.match(answer.status!.message, /is invalid: whole object refused$/);
  });
});

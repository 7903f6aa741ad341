import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { expectedCrdName, KIND_NOT_SERVED_REQUEUE_MS, ObjectOperationError, UnknownKindError } from "../../../src/apply/errors.js";
import { KindNotFoundError, KubeApiError } from "../../../src/kube/errors.js";

describe("expectedCrdName", () => {
  it("guesses <plural>.<group> as kubectl does", () => {
    assert.equal(expectedCrdName("monitoring.coreos.com", "PrometheusRule"), "prometheusrules.monitoring.coreos.com");
    assert.equal(expectedCrdName("monitoring.coreos.com", "Prometheus"), "prometheuses.monitoring.coreos.com");
    assert.equal(expectedCrdName("example.com", "Policy"), "policies.example.com");
    assert.equal(expectedCrdName("example.com", "Gateway"), "gateways.example.com");
  });
  it("is undefined for the core group", () => {
    assert.equal(expectedCrdName("", "ConfigMap"), undefined);
  });
});

describe("UnknownKindError", () => {
  const cause = new KindNotFoundError("monitoring.coreos.com/v1", "PrometheusRule");
  it("asks for a short requeue and names the missing CRD in the message", () => {
    const err = new UnknownKindError(
      "ns_rules_monitoring.coreos.com_PrometheusRule",
      `stage "rules": PrometheusRule ns/rules: the API server does not serve kind PrometheusRule in monitoring.coreos.com/v1 ` +
        `and no matching CRD installed; add its CustomResourceDefinition to this stage or an earlier one, or correct apiVersion/kind`,
      { cause },
    );
    assert.equal(err.requeueAfterMs, KIND_NOT_SERVED_REQUEUE_MS);
    assert.ok(KIND_NOT_SERVED_REQUEUE_MS <= 60_000);
    assert.equal(err.terminal, false);
    assert.equal(err.missingCrd, "prometheusrules.monitoring.coreos.com");
    assert.match(err.message, /add its CustomResourceDefinition \(prometheusrules\.monitoring\.coreos\.com by the usual naming: missing, not yet Established, or not serving v1\) to this stage/);
  });
  it("appends the CRD name to a message without the usual wording, and leaves one that names it", () => {
    assert.match(new UnknownKindError("id", "kind PrometheusRule is not served", { cause }).message, /served; the CustomResourceDefinition \(prometheusrules\.monitoring\.coreos\.com/);
    const named = "install prometheusrules.monitoring.coreos.com";
    assert.equal(new UnknownKindError("id", named, { cause }).message, named);
  });
});

describe("ObjectOperationError", () => {
  it("asks for a short requeue when the kind stopped being served under the request", () => {
    const err = new ObjectOperationError("id", "listing failed", new KindNotFoundError("example.com/v1", "Widget"));
    assert.equal(err.requeueAfterMs, KIND_NOT_SERVED_REQUEUE_MS);
  });
  it("does not for other failures", () => {
    const err = new ObjectOperationError("id", "listing failed", new KubeApiError({ status: 500, reason: "InternalError", serverMessage: "boom", operation: "list" }));
    assert.equal(err.requeueAfterMs, undefined);
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { InvalidSpecError, Reasons } from "../../../src/errors.js";
import { compileCelPredicate } from "../../../src/health/index.js";

const FIELD = "spec.stages[0].actions.pre[0].wait.expr";

function evaluate(expression: string, object: Record<string, unknown>) {
  return compileCelPredicate(expression, FIELD).evaluate(object);
}

const certificate = {
  apiVersion: "cert-manager.io/v1",
  kind: "Certificate",
  metadata: { name: "app-certificate", namespace: "apps", generation: 2 },
  spec: { secretName: "app-tls-certs", issuerRef: { kind: "ClusterIssuer", name: "app-issuer" } },
  status: {
    conditions: [
      { type: "Ready", status: "True", observedGeneration: 2, reason: "Ready", message: "Certificate is up to date and has not expired" },
      { type: "Issuing", status: "False", observedGeneration: 2, reason: "Issued", message: "" },
    ],
  },
};

describe("compileCelPredicate", () => {
  describe("the Flux healthCheckExprs library evaluates as in kustomize-controller", () => {
    // RFC-0009's cert-manager Certificate example.
    const issuing = "status.conditions.filter(e, e.type == 'Issuing').all(e, e.observedGeneration == metadata.generation && e.status == 'True')";
    const readyFalse = "status.conditions.filter(e, e.type == 'Ready').all(e, e.observedGeneration == metadata.generation && e.status == 'False')";
    const readyTrue = "status.conditions.filter(e, e.type == 'Ready').all(e, e.observedGeneration == metadata.generation && e.status == 'True')";

    it("Certificate issued: inProgress false, failed false, current true", () => {
      assert.deepEqual(evaluate(issuing, certificate), { ok: true, value: false });
      assert.deepEqual(evaluate(readyFalse, certificate), { ok: true, value: false });
      assert.deepEqual(evaluate(readyTrue, certificate), { ok: true, value: true });
    });

    it("Certificate at a newer generation than its conditions: current is false", () => {
      const newer = { ...certificate, metadata: { ...certificate.metadata, generation: 3 } };
      assert.deepEqual(evaluate(readyTrue, newer), { ok: true, value: false });
    });

    const clusterIssuer = (status: string) => ({
      apiVersion: "cert-manager.io/v1",
      kind: "ClusterIssuer",
      metadata: { name: "letsencrypt", generation: 1 },
      spec: { acme: {} },
      status: { conditions: [{ type: "Ready", status, reason: "ErrRegisterACMEAccount", message: "" }] },
    });
    for (const [kind, failed, current] of [
      ["ClusterIssuer / Cluster API Cluster / ScaledObject / ClusterSecretStore",
        "status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'False')",
        "status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True')"],
    ] as const) {
      it(`${kind}: Ready=False is failed, Ready=True is current`, () => {
        assert.deepEqual(evaluate(failed, clusterIssuer("False")), { ok: true, value: true });
        assert.deepEqual(evaluate(current, clusterIssuer("False")), { ok: true, value: false });
        assert.deepEqual(evaluate(failed, clusterIssuer("True")), { ok: true, value: false });
        assert.deepEqual(evaluate(current, clusterIssuer("True")), { ok: true, value: true });
      });
    }

    it("Crossplane Role: failed needs both status and reason", () => {
      const expr = "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False' && e.reason == 'ReconcileError')";
      const role = (reason: string) => ({ status: { conditions: [{ type: "Synced", status: "False", reason }] } });
      assert.deepEqual(evaluate(expr, role("ReconcileError")), { ok: true, value: true });
      assert.deepEqual(evaluate(expr, role("Creating")), { ok: true, value: false });
    });

    it("CephCluster: a nested status field", () => {
      const ceph = { status: { ceph: { health: "HEALTH_OK" } } };
      assert.deepEqual(evaluate("status.ceph.health == 'HEALTH_OK'", ceph), { ok: true, value: true });
      assert.deepEqual(evaluate("status.ceph.health == 'HEALTH_ERR'", ceph), { ok: true, value: false });
    });

    it("the documented Database and Argo Rollout examples", () => {
      const rollout = { status: { phase: "Paused" } };
      assert.deepEqual(evaluate("status.phase in ['Progressing', 'Paused']", rollout), { ok: true, value: true });
      assert.deepEqual(evaluate("status.phase == 'Healthy'", rollout), { ok: true, value: false });
    });

    it("an empty conditions list makes filter(...).all(...) vacuously true, as in cel-go", () => {
      const expr = "status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'False')";
      assert.deepEqual(evaluate(expr, { status: { conditions: [] } }), { ok: true, value: true });
    });
  });

  describe("object fields", () => {
    it("JSON integers are CEL ints, so arithmetic with int literals type-checks", () => {
      const obj = { status: { readyReplicas: 3, ratio: 0.5 } };
      assert.deepEqual(evaluate("status.readyReplicas + 1 == 4", obj), { ok: true, value: true });
      assert.deepEqual(evaluate("status.readyReplicas >= 2", obj), { ok: true, value: true });
      assert.deepEqual(evaluate("status.ratio < 1.0", obj), { ok: true, value: true });
    });

    it("self is the whole object, so has(self.status) guards a missing status", () => {
      const fresh = { apiVersion: "db.example/v1", kind: "Database", metadata: { name: "orders" }, spec: {} };
      assert.deepEqual(evaluate("has(self.status) && self.status.phase == 'Running'", fresh), { ok: true, value: false });
      assert.deepEqual(evaluate("self.kind == 'Database' && kind == 'Database'", fresh), { ok: true, value: true });
    });

    it("has() guards a missing nested field", () => {
      assert.deepEqual(evaluate("has(status.attribute) && status.attribute.ready", { status: {} }), { ok: true, value: false });
    });

    it("optional selection works, as with Flux's OptionalTypes", () => {
      assert.deepEqual(evaluate("status.?phase.orValue('Pending') == 'Pending'", { status: {} }), { ok: true, value: true });
    });

    it("string extension functions are available", () => {
      assert.deepEqual(evaluate("status.phase.lowerAscii().startsWith('run')", { status: { phase: "Running" } }), { ok: true, value: true });
    });
  });

  describe("missing fields are an evaluation error, never a crash", () => {
    it("a missing top-level field (no status yet)", () => {
      const outcome = evaluate("status.conditions.exists(e, e.type == 'Ready')", { metadata: { name: "x" } });
      assert.equal(outcome.ok, false);
      assert.match(!outcome.ok ? outcome.error : "", /status/);
    });

    it("has() on a field of a missing top-level variable, as in cel-go", () => {
      const outcome = evaluate("has(status.observedGeneration) && metadata.generation != status.observedGeneration", {
        metadata: { generation: 1 },
      });
      assert.equal(outcome.ok, false);
    });

    it("a missing nested key", () => {
      const outcome = evaluate("status.conditions.all(e, e.status == 'True')", { status: {} });
      assert.deepEqual(outcome.ok, false);
      assert.match(!outcome.ok ? outcome.error : "", /conditions/);
    });

    it("a result that is not a bool", () => {
      const outcome = evaluate("status.phase", { status: { phase: "Running" } });
      assert.deepEqual(outcome, { ok: false, error: "expression yielded string, not a bool" });
    });
  });

  describe("compile errors", () => {
    for (const [name, expression, fragment] of [
      ["a syntax error", "status.phase == ", /Unexpected token: EOF \(at column \d+\)/],
      ["a dangling selector", "status.", /Expected IDENTIFIER/],
      ["an unknown function", "isReady(status)", /no matching overload for 'isReady/],
      ["has() on a top-level variable", "has(status)", /has\(\) invalid argument/],
      ["a non-bool literal result", "1 + 2", /yields int, it must yield a bool/],
      ["mixed ternary branches", "status.phase == 'x' ? 1 : 'y'", /Ternary branches/],
      ["an empty expression", "  ", /empty/],
    ] as const) {
      it(`${name} is an InvalidSpec error naming the field and the CEL message`, () => {
        assert.throws(
          () => compileCelPredicate(expression, FIELD),
          (err: unknown) => {
            assert.ok(err instanceof InvalidSpecError);
            assert.equal(err.reason, Reasons.InvalidSpec);
            assert.ok(err.message.startsWith(`${FIELD}: invalid CEL expression `), err.message);
            assert.match(err.message, fragment);
            assert.ok(!err.message.includes("\n"), "one line, fit for a condition message");
            return true;
          },
        );
      });
    }

    it("a cached failure still names the field of the second user", () => {
      assert.throws(() => compileCelPredicate("status.", "first.field"), /InvalidSpecError: first\.field: /);
      assert.throws(() => compileCelPredicate("status.", "second.field"), (err: unknown) => {
        assert.ok(err instanceof InvalidSpecError);
        assert.ok(err.message.startsWith("second.field: "));
        return true;
      });
    });
  });
});

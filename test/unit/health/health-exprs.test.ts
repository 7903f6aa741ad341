import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { HealthExpr } from "../../../src/api/types.js";
import { InvalidSpecError } from "../../../src/errors.js";
import { compileHealthExprs, HealthStatus } from "../../../src/health/index.js";

const PATH = "spec.stages[1].readyChecks";

function evaluatorFor(expr: Omit<HealthExpr, "apiVersion" | "kind">) {
  const [compiled] = compileHealthExprs([{ apiVersion: "example.com/v1", kind: "Thing", ...expr }], PATH);
  assert.ok(compiled);
  return compiled;
}

const flags = (current: boolean, inProgress: boolean, failed: boolean) => ({
  apiVersion: "example.com/v1",
  kind: "Thing",
  metadata: { name: "t" },
  data: { current, inProgress, failed },
});

const ALL = { current: "data.current", inProgress: "data.inProgress", failed: "data.failed" };

// The evaluation order and outcomes of fluxcd/pkg runtime/cel StatusEvaluator (RFC-0009).
describe("health expressions follow kustomize-controller's evaluation order", () => {
  it("inProgress wins over failed and current", () => {
    assert.equal(evaluatorFor(ALL).evaluate(flags(true, true, true)).status, HealthStatus.InProgress);
  });

  it("failed wins over current", () => {
    assert.equal(evaluatorFor(ALL).evaluate(flags(true, false, true)).status, HealthStatus.Failed);
  });

  it("current alone is Current", () => {
    assert.equal(evaluatorFor(ALL).evaluate(flags(true, false, false)).status, HealthStatus.Current);
  });

  it("nothing true is InProgress", () => {
    const result = evaluatorFor(ALL).evaluate(flags(false, false, false));
    assert.equal(result.status, HealthStatus.InProgress);
    assert.match(result.message, /no health expression is true/);
  });

  it("an observedGeneration behind metadata.generation is InProgress before any expression runs", () => {
    const result = evaluatorFor({ current: "true" }).evaluate({
      metadata: { name: "t", generation: 2 },
      status: { observedGeneration: 1 },
    });
    assert.equal(result.status, HealthStatus.InProgress);
    assert.equal(result.reason, "LatestGenerationNotObserved");
  });

  it("an expression that cannot evaluate is Unknown (not terminal) and carries the CEL error", () => {
    const certificate = evaluatorFor({
      failed: "status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'False')",
      current: "status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True')",
    });
    const result = certificate.evaluate({ metadata: { name: "fresh" }, spec: {} });
    assert.equal(result.status, HealthStatus.Unknown);
    assert.match(result.message, /cannot evaluate the failed expression "status\.conditions/);
    const withStatus = certificate.evaluate({ metadata: { name: "fresh" }, status: {} });
    assert.equal(withStatus.status, HealthStatus.Unknown);
    assert.match(withStatus.message, /conditions/);
  });

  it("an empty conditions list with a filter/all failed expression is Failed, as in Flux", () => {
    const result = evaluatorFor({
      failed: "status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'False')",
      current: "status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True')",
    }).evaluate({ metadata: { name: "t" }, status: { conditions: [] } });
    assert.equal(result.status, HealthStatus.Failed);
  });

  it("a guarded inProgress expression keeps a fresh object waiting", () => {
    const result = evaluatorFor({
      inProgress: "!has(self.status) || !has(self.status.phase) || status.phase == 'Provisioning'",
      failed: "status.phase == 'Failed'",
      current: "status.phase == 'Running'",
    }).evaluate({ metadata: { name: "orders" }, spec: {} });
    assert.equal(result.status, HealthStatus.InProgress);
  });
});

describe("compileHealthExprs", () => {
  it("names the exact expression field of a compile error", () => {
    assert.throws(
      () =>
        compileHealthExprs(
          [
            { apiVersion: "a.example/v1", kind: "A", current: "true" },
            { apiVersion: "db.example/v1", kind: "Database", current: "status.phase == 'Running'", failed: "status.phase ==" },
          ],
          PATH,
        ),
      (err: unknown) => {
        assert.ok(err instanceof InvalidSpecError);
        assert.match(err.message, /^spec\.stages\[1\]\.readyChecks\.exprs\[1\]\.failed: invalid CEL expression "status\.phase ==": Unexpected token/);
        return true;
      },
    );
  });

  it("names current when current does not compile", () => {
    assert.throws(
      () => compileHealthExprs([{ apiVersion: "db.example/v1", kind: "Database", current: "status.phase = 'Running'" }], PATH),
      /spec\.stages\[1\]\.readyChecks\.exprs\[0\]\.current: invalid CEL expression/,
    );
  });

  it("requires current", () => {
    assert.throws(
      () => compileHealthExprs([{ apiVersion: "db.example/v1", kind: "Database", current: "" }], PATH),
      /exprs\[0\]\.current: the current expression is required/,
    );
  });

  it("rejects two entries for the same group and kind", () => {
    assert.throws(
      () =>
        compileHealthExprs(
          [
            { apiVersion: "db.example/v1", kind: "Database", current: "true" },
            { apiVersion: "db.example/v2", kind: "Database", current: "false" },
          ],
          PATH,
        ),
      /exprs\[1\]: Database in group "db.example" already has health expressions at spec\.stages\[1\]\.readyChecks\.exprs\[0\]/,
    );
  });

  it("matches by group and kind, ignoring the version", () => {
    const [compiled] = compileHealthExprs([{ apiVersion: "db.example/v1beta1", kind: "Database", current: "true" }], PATH);
    assert.equal(compiled?.group, "db.example");
    assert.equal(compiled?.kind, "Database");
  });
});

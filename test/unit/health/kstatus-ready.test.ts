// kstatus's Ready-condition fallback (checkReadyCondition in
// sigs.k8s.io/cli-utils/pkg/kstatus/status/status.go): for kinds without a
// built-in rule, Ready=False or Unknown is InProgress, Ready=True is Current.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse as parseYaml } from "yaml";

import { computeStatus, HealthStatus } from "../../../src/health/index.js";
import { repoRoot } from "../../../src/util/tools.js";

type Obj = Record<string, unknown>;

function certificate(conditions: Obj[] | undefined, extra: { generation?: number; observedGeneration?: number } = {}): Obj {
  return {
    apiVersion: "cert-manager.io/v1",
    kind: "Certificate",
    metadata: { name: "web-tls", namespace: "demo", ...(extra.generation === undefined ? {} : { generation: extra.generation }) },
    spec: { secretName: "web-tls" },
    status: { ...(conditions ? { conditions } : {}), ...(extra.observedGeneration === undefined ? {} : { observedGeneration: extra.observedGeneration }) },
  };
}

const issuing = { type: "Ready", status: "False", reason: "DoesNotExist", message: "Issuing certificate as Secret does not exist" };

describe("kstatus Ready-condition fallback", () => {
  it("the case's Certificate (Ready=False, no observedGeneration) is InProgress with the condition's reason and message", () => {
    // ../shared/cases/apply-correctness/ready-false-resource/certificate.yaml
    const obj = parseYaml(readFileSync(join(repoRoot(), "test", "fixtures", "cases", "ready-false-resource", "certificate.yaml"), "utf8")) as Obj;
    assert.deepEqual(computeStatus(obj), {
      status: HealthStatus.InProgress,
      reason: "DoesNotExist",
      message: "Issuing certificate as Secret does not exist",
    });
  });

  it("Ready=Unknown is InProgress", () => {
    const result = computeStatus(certificate([{ type: "Ready", status: "Unknown", reason: "Pending", message: "" }]));
    assert.equal(result.status, HealthStatus.InProgress);
    assert.equal(result.reason, "Pending");
    assert.equal(result.message, "Pending", "without a message the reason says what is awaited");
  });

  it("a Ready=False without reason or message still says what it waits for", () => {
    const result = computeStatus(certificate([{ type: "Ready", status: "False" }]));
    assert.deepEqual(result, { status: HealthStatus.InProgress, reason: "ReadyFalse", message: "Ready condition is False" });
  });

  it("Ready=True is Current", () => {
    assert.deepEqual(computeStatus(certificate([{ type: "Ready", status: "True", reason: "Ready", message: "Certificate is up to date" }])), {
      status: HealthStatus.Current,
      message: "Resource is Ready",
    });
  });

  it("no Ready condition leaves the generic verdict: Current", () => {
    assert.equal(computeStatus(certificate(undefined)).status, HealthStatus.Current);
    assert.equal(computeStatus(certificate([{ type: "Issuing", status: "True", reason: "x", message: "" }])).status, HealthStatus.Current);
  });

  it("the first Ready condition with a True/False/Unknown status decides; other status values are skipped, as in kstatus", () => {
    assert.equal(computeStatus(certificate([{ type: "Ready", status: "" }, { type: "Ready", status: "False", reason: "r" }])).status, HealthStatus.InProgress);
    assert.equal(computeStatus(certificate([{ type: "Ready", status: "True" }, { type: "Ready", status: "False" }])).status, HealthStatus.Current);
    assert.equal(computeStatus(certificate([{ type: "Ready", status: "false" }])).status, HealthStatus.Current, "status values are case-sensitive");
    assert.equal(computeStatus(certificate([{ type: "ready", status: "False" }])).status, HealthStatus.Current, "the type is case-sensitive");
  });

  it("the generic rules still come first: Stalled=True is Failed, a generation lag InProgress, even with Ready=True", () => {
    assert.equal(computeStatus(certificate([{ type: "Stalled", status: "True", reason: "Bad" }, issuing])).status, HealthStatus.Failed);
    const lagging = certificate([{ type: "Ready", status: "True" }], { generation: 2, observedGeneration: 1 });
    assert.equal(computeStatus(lagging).reason, "LatestGenerationNotObserved");
    const deleting = certificate([{ type: "Ready", status: "True" }]);
    (deleting.metadata as Obj).deletionTimestamp = "2025-01-01T00:00:00Z";
    assert.equal(computeStatus(deleting).status, HealthStatus.Terminating);
  });

  it("kinds with a built-in rule are not judged by their Ready condition", () => {
    const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, status: { conditions: [{ type: "Ready", status: "False" }] } };
    assert.equal(computeStatus(cm).status, HealthStatus.Current);
    const running = { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, status: { phase: "Succeeded", conditions: [{ type: "Ready", status: "False" }] } };
    assert.equal(computeStatus(running).status, HealthStatus.Current, "a completed Pod is Current although its Ready is False");
  });

  it("a Crossplane claim waiting for its composite is InProgress", () => {
    const claim = {
      apiVersion: "database.example.org/v1alpha1",
      kind: "PostgreSQLInstance",
      metadata: { name: "db", namespace: "apps", generation: 1 },
      status: {
        conditions: [
          { type: "Synced", status: "True", reason: "ReconcileSuccess" },
          { type: "Ready", status: "False", reason: "Creating", message: "Composite resource claim is waiting for composite resource to become Ready" },
        ],
      },
    };
    assert.equal(computeStatus(claim).status, HealthStatus.InProgress);
    assert.equal(computeStatus(claim).reason, "Creating");
  });
});

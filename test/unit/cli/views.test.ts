import assert from "node:assert/strict";
import { test } from "node:test";
import type { Stage, StageSet, StageStatus } from "../../../src/api/types.js";
import { actionsToRun } from "../../../src/cli/actions-summary.js";
import type { StageChanges } from "../../../src/cli/changes.js";
import { painter } from "../../../src/cli/color.js";
import { renderDiffReport } from "../../../src/cli/diff-report.js";
import { previewMerge } from "../../../src/cli/preview-merge.js";
import { stageSetDetail, stageSetTable } from "../../../src/cli/status-view.js";

function stageSet(name: string, namespace: string, status: StageSet["status"], stages = ["infra", "app"]): StageSet {
  return {
    apiVersion: "stages.metio.wtf/v1",
    kind: "StageSet",
    metadata: { name, namespace, generation: 2 },
    spec: { stages: stages.map((s) => ({ name: s, sourceRef: { name: s } })) },
    status,
  };
}

const ready = (status: "True" | "False" | "Unknown", reason: string, message = "") => ({
  type: "Ready",
  status,
  reason,
  message,
  lastTransitionTime: "2025-01-01T00:00:00Z",
});

test("the list shows the documented columns, NAMESPACE only with -A", () => {
  const items = [
    stageSet("web", "staging", { conditions: [ready("False", "StageFailed")], stages: [{ name: "infra", phase: "Ready" }, { name: "app", phase: "Failed" }] }),
    stageSet("payments", "payments", {
      conditions: [ready("True", "Succeeded")],
      version: "2.1.0",
      stages: [{ name: "infra", phase: "Ready" }, { name: "app", phase: "Ready" }],
      pendingUpdate: { nextWindowOpens: "2025-06-01T18:00:00Z" },
    }),
  ];
  const all = stageSetTable(items, true).split("\n");
  assert.match(all[0]!, /^NAMESPACE\s+NAME\s+READY\s+REASON\s+STAGES\s+VERSION\s+PENDING$/);
  assert.match(all[1]!, /^payments\s+payments\s+True\s+Succeeded\s+2\/2\s+2\.1\.0\s+held until 2025-06-01T18:00:00Z$/);
  assert.match(all[2]!, /^staging\s+web\s+False\s+StageFailed\s+1\/2\s+-\s+-$/);
  assert.match(stageSetTable(items, false).split("\n")[0]!, /^NAME\s+READY/);
});

test("the detail shows the Ready message and each stage's phase, revision and actions", () => {
  const detail = stageSetDetail(
    stageSet("web", "apps", {
      observedGeneration: 2,
      conditions: [ready("Unknown", "Progressing", 'stage "app": verifying revision v2')],
      stages: [
        { name: "infra", phase: "Ready", appliedRevision: "v2", entriesCount: 3, executedActions: ["migrate"] },
        { name: "app", phase: "Verifying", appliedRevision: "v1", message: "waiting for Deployment apps/web" },
      ],
    }),
  );
  assert.match(detail, /Ready:\s+Unknown \(Progressing\)/);
  assert.match(detail, /Message:\s+stage "app": verifying revision v2/);
  assert.match(detail, /infra\s+Ready\s+v2\s+3\s+migrate\s+-/);
  assert.match(detail, /app\s+Verifying\s+v1\s+-\s+-\s+waiting for Deployment apps\/web/);
});

test("the detail lists pending and executed migrations, held revisions and the last update-now", () => {
  const detail = stageSetDetail(
    stageSet("web", "apps", {
      observedGeneration: 2,
      conditions: [ready("False", "UpdateDeferred", "update held")],
      version: "1.0.0",
      pendingMigrations: ["to-2-0"],
      executedMigrations: ["to-1-5"],
      pendingUpdate: { revisions: { "apps/web": "main@sha1:0002" }, nextWindowOpens: "2026-12-01T08:00:00Z" },
      lastHandledUpdateOverride: "2026-11-30T10:00:00Z",
    }),
  );
  assert.match(detail, /Migrations:\s+pending to-2-0; executed to-1-5/);
  assert.match(detail, /Held:\s+apps\/web at main@sha1:0002/);
  assert.match(detail, /Pending:\s+held until 2026-12-01T08:00:00Z/);
  assert.match(detail, /Update-now:\s+last honoured 2026-11-30T10:00:00Z/);
});

test("actions already in the ledger for the revision are not listed again", () => {
  const stage: Stage = {
    name: "application",
    sourceRef: { name: "app" },
    actions: {
      pre: [{ name: "db-migrate", job: { sourceRef: { name: "ledger-migrations" } } }],
      post: [{ name: "smoke-test", http: { url: "https://payments.internal/healthz" } }],
    },
  };
  assert.deepEqual(actionsToRun(stage, undefined, "v2"), ["pre db-migrate job ledger-migrations", "post smoke-test http https://payments.internal/healthz"]);
  const status: StageStatus = { name: "application", phase: "Verifying", ledgerRevision: "v2", executedActions: ["db-migrate"] };
  assert.deepEqual(actionsToRun(stage, status, "v2"), ["post smoke-test http https://payments.internal/healthz"]);
  assert.equal(actionsToRun(stage, status, "v3").length, 2);
});

test("the diff report: unified hunks per object, pruned objects, actions, masked secrets", () => {
  const stage: Stage = { name: "application", sourceRef: { name: "app" }, actions: { pre: [{ name: "db-migrate", job: { sourceRef: { name: "m" } } }] } };
  const live = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "payments", resourceVersion: "1" }, spec: { replicas: 3 } };
  const changes: StageChanges[] = [
    {
      stage,
      index: 0,
      revision: "v2",
      objects: [
        { kind: "update", ref: { apiVersion: "apps/v1", kind: "Deployment", name: "web", namespace: "payments" }, live, merged: { ...live, metadata: { ...live.metadata, resourceVersion: "2" }, spec: { replicas: 6 } } },
        {
          kind: "update",
          ref: { apiVersion: "v1", kind: "Secret", name: "creds", namespace: "payments" },
          live: { apiVersion: "v1", kind: "Secret", metadata: { name: "creds", namespace: "payments" }, data: { token: "b2xk" } },
          merged: { apiVersion: "v1", kind: "Secret", metadata: { name: "creds", namespace: "payments" }, data: { token: "bmV3" } },
        },
        { kind: "unchanged", ref: { apiVersion: "v1", kind: "ConfigMap", name: "same", namespace: "payments" }, merged: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "same" } } },
      ],
      pruned: [{ apiVersion: "v1", kind: "ConfigMap", name: "old-feature-flags", namespace: "payments" }],
    },
  ];
  const options = { showSecrets: false, showUnchanged: false, prune: true, paint: painter(false), stageStatus: new Map() };
  const report = renderDiffReport(changes, options);
  assert.ok(report.changed);
  assert.equal(
    report.text,
    [
      "--- live",
      "+++ merged",
      "@@ Deployment payments/web @@",
      "   name: web",
      "   namespace: payments",
      " spec:",
      "-  replicas: 3",
      "+  replicas: 6",
      "@@ Secret payments/creds @@",
      "   name: creds",
      "   namespace: payments",
      " data:",
      '-  token: "***"',
      '+  token: "***"',
      "- ConfigMap payments/old-feature-flags (pruned: fell out of inventory)",
      "",
      "Actions to run:",
      "  application:",
      "    pre db-migrate job m",
      "",
    ].join("\n"),
  );
  assert.ok(!report.text.includes("b2xk") && !report.text.includes("bmV3"));
  assert.ok(renderDiffReport(changes, { ...options, showSecrets: true }).text.includes("-  token: b2xk\n+  token: bmV3\n"));
  assert.doesNotMatch(renderDiffReport(changes, { ...options, prune: false }).text, /pruned/);
  assert.match(renderDiffReport(changes, { ...options, showUnchanged: true }).text, /@@ ConfigMap payments\/same \(unchanged\) @@/);
  assert.ok(renderDiffReport(changes, { ...options, paint: painter(true) }).text.includes("\x1b[31m-  replicas: 3\x1b[0m"));
});

test("a clean run prints nothing and reports no change", () => {
  const report = renderDiffReport(
    [{ stage: { name: "a", sourceRef: { name: "a" } }, index: 0, revision: "v1", objects: [], pruned: [] }],
    { showSecrets: false, showUnchanged: false, prune: true, paint: painter(false), stageStatus: new Map([["a", { name: "a", phase: "Ready" as const, appliedRevision: "v1" }]]) },
  );
  assert.deepEqual(report, { text: "", changed: false });
});

test("the client-side preview lays rendered fields over the live object, merging named list items", () => {
  const live = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", uid: "u1" },
    spec: {
      replicas: 3,
      template: { spec: { containers: [{ name: "web", image: "web:1", imagePullPolicy: "IfNotPresent" }, { name: "sidecar", image: "proxy" }] } },
    },
  };
  const desired = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", creationTimestamp: null }, spec: { replicas: 6, template: { spec: { containers: [{ name: "web", image: "web:2" }] } } } };
  const merged = previewMerge(live, desired as never);
  assert.deepEqual(merged.spec, {
    replicas: 6,
    template: { spec: { containers: [{ name: "web", image: "web:2", imagePullPolicy: "IfNotPresent" }, { name: "sidecar", image: "proxy" }] } },
  });
  assert.equal(merged.metadata.uid, "u1");
  const secret = previewMerge(
    { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, data: { a: "eA==" } },
    { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, stringData: { a: "y" } },
  );
  assert.deepEqual(secret.data, { a: "eQ==" });
  assert.equal(secret.stringData, undefined);
});

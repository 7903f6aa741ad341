import type { StageSet } from "../../../src/api/types.js";

/** A StageSet that uses every part of the spec and is valid. */
export function fullStageSet(): StageSet {
  return {
    apiVersion: "stages.metio.wtf/v1",
    kind: "StageSet",
    metadata: { name: "payments", namespace: "payments" },
    spec: {
      interval: "10m",
      retryInterval: "2m",
      driftDetectionInterval: "1m30s",
      serviceAccountName: "payments-deployer",
      dependsOn: [{ name: "platform", namespace: "platform" }],
      kubeConfig: { secretRef: { name: "prod-eu-kubeconfig" } },
      decryption: { provider: "sops", secretRef: { name: "sops-keys" } },
      version: { fromObject: { stage: "application", kind: "Deployment", name: "web" } },
      migrations: [
        {
          name: "backfill-ledger-2-0",
          from: "1.*",
          to: "2.0.0",
          stage: "application",
          actions: [{ name: "backfill", job: { sourceRef: { name: "ledger-backfill-job" } } }],
        },
      ],
      updateWindows: [
        { type: "Deny", schedule: "0 17 * * FRI", duration: "60h", timeZone: "Europe/Berlin" },
        { type: "Deny", from: "2026-12-24T00:00:00Z", to: "2026-12-27T00:00:00Z" },
      ],
      stages: [
        {
          name: "infrastructure",
          sourceRef: { name: "payments-infra" },
          readyChecks: {
            timeout: "5m",
            checks: [{ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name: "ledgers.payments.example" }],
            exprs: [{ apiVersion: "db.example/v1", kind: "Database", current: "status.phase == 'Running'" }],
          },
          conflictPolicy: {
            rules: [
              { target: { apiVersion: "batch/v1", kind: "Job" }, action: "Recreate" },
              { target: { kind: "PersistentVolumeClaim", name: "scratch" }, action: "Recreate", allowDataLoss: true },
            ],
          },
        },
        {
          name: "application",
          sourceRef: { kind: "GitRepository", name: "payments-app" },
          path: "./overlays/production",
          timeout: "20m",
          patches: [{ patch: "- op: replace\n  path: /spec/replicas\n  value: 6\n", target: { kind: "Deployment", name: "web" } }],
          postBuild: {
            substitute: { cluster_name: "prod-eu" },
            substituteFrom: [{ kind: "ConfigMap", name: "cluster-vars" }, { kind: "Secret", name: "cluster-secrets", optional: true }],
          },
          actions: {
            pre: [
              { name: "db-migrate", job: { sourceRef: { name: "payments-migrations" } } },
              { name: "maintenance-page", apply: { sourceRef: { name: "maintenance-page" }, wait: true } },
              { name: "settle", wait: { duration: "30s" } },
            ],
            post: [
              { name: "smoke-test", http: { url: "https://payments.internal/healthz", expectedStatus: [200] } },
              {
                name: "web-ready",
                timeout: "10m",
                retries: 2,
                wait: { target: { apiVersion: "apps/v1", kind: "Deployment", name: "web" }, expr: "status.readyReplicas >= 3" },
              },
              {
                name: "enable-traffic",
                patch: { target: { apiVersion: "v1", kind: "Service", name: "web" }, patch: '{"spec":{"selector":{"release":"green"}}}' },
              },
              { name: "drop-maintenance-page", delete: { target: { apiVersion: "v1", kind: "Pod", selector: "app=maintenance" } } },
            ],
            onFailure: [{ name: "page-oncall", http: { url: "https://alerts.internal/hook", method: "PUT" } }],
          },
        },
      ],
    },
  };
}

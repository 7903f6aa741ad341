// A no-op reconcile of a realistic application stage (the kinds a platform
// team ships, with the fields the API server defaults or normalizes) makes no
// write request.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createTestNamespace } from "../support/cluster.js";
import { reconcileCount, startTestController, writeRequests } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { usePipelineFixture, waitForReason, STAGESET } from "../support/pipeline.js";
import { waitFor } from "../support/wait.js";

const APP = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: { app: web }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      serviceAccountName: web
      containers:
        - name: web
          image: registry.example/web:1.2.3
          args: ["--port", "8080"]
          ports: [{ containerPort: 8080, name: http }]
          env:
            - { name: MODE, value: production }
            - name: POD
              valueFrom: { fieldRef: { fieldPath: metadata.name } }
          resources:
            requests: { cpu: 100m, memory: 64Mi }
            limits: { cpu: "0.5", memory: 128Mi }
          readinessProbe:
            httpGet: { path: /healthz, port: http }
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: http }]
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: web
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: web
rules:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: web
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: web }
subjects:
  - kind: ServiceAccount
    name: web
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
spec:
  podSelector: { matchLabels: { app: web } }
  ingress:
    - ports: [{ port: 8080 }]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 1
  selector: { matchLabels: { app: web } }
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: web }
  minReplicas: 2
  maxReplicas: 4
  metrics:
    - type: Resource
      resource: { name: cpu, target: { type: Utilization, averageUtilization: 80 } }
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: cleanup
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: cleanup
              image: registry.example/cleanup:1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: production
---
apiVersion: v1
kind: Secret
metadata:
  name: credentials
type: Opaque
stringData:
  token: not-a-real-token
`;

describe("no-op reconcile", () => {
  const fixture = usePipelineFixture();

  test("a realistic application stage is re-checked without a single write request", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "pipe-noop");
    await publishExternalArtifact(fixture.client, namespace, "app", fixture.server.add(`${namespace}-app`, { "app.yaml": APP }));
    let controller = await startTestController(fixture.cluster, namespace);
    try {
      await fixture.client.create({ ...STAGESET, metadata: { name: "app", namespace }, spec: { stages: [{ name: "app", sourceRef: { name: "app" }, readyChecks: { timeout: "60s" } }] } });
      await waitForReason(fixture.client, namespace, "app", "Succeeded", 90_000);
      // Give the controllers (HPA, Deployment) time to write their status; then count one more run.
      await new Promise((r) => setTimeout(r, 1_000));
      for (let round = 0; round < 2; round++) {
        const running = controller;
        const before = await reconcileCount(running);
        running.client.resetStats();
        running.manager.enqueue(`${namespace}/app`);
        await waitFor(async () => (await reconcileCount(running)) > before, { description: "a no-op reconcile", timeoutMs: 30_000, intervalMs: 20 });
        assert.equal(writeRequests(running), 0, `round ${round}: the no-op reconcile wrote: ${JSON.stringify(running.client.stats())}`);
      }

      // A restarted controller remembers nothing: its first run must find no drift from the live objects alone.
      await controller.stop();
      controller = await startTestController(fixture.cluster, namespace);
      const restarted = controller;
      await waitFor(async () => (await reconcileCount(restarted)) > 0, { description: "the restarted controller's first run", timeoutMs: 30_000, intervalMs: 20 });
      assert.equal(writeRequests(restarted), 0, `after a restart the first run wrote: ${JSON.stringify(restarted.client.stats())}`);
    } finally {
      await controller.stop();
    }
  });
});

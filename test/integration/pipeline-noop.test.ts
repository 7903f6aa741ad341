// A no-op reconcile of a realistic application stage (the kinds a platform
// team ships, with the fields the API server defaults or normalizes) makes no
// write request.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import type { KubeClient } from "../../src/kube/client.js";
import { createTestNamespace } from "../support/cluster.js";
import { reconcileCount, startTestController, waitForIdle, writeRequests } from "../support/controller.js";
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

/** Whether the Deployment, HPA and PDB controllers have written status for the current generation of `web`. */
async function othersCaughtUp(client: KubeClient, namespace: string): Promise<boolean> {
  type WithStatus = KubeObject & { status?: { observedGeneration?: number; conditions?: unknown[] } };
  const [deployment, hpa, pdb] = await Promise.all([
    client.get<WithStatus>({ apiVersion: "apps/v1", kind: "Deployment", namespace, name: "web" }),
    client.get<WithStatus>({ apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler", namespace, name: "web" }),
    client.get<WithStatus>({ apiVersion: "policy/v1", kind: "PodDisruptionBudget", namespace, name: "web" }),
  ]);
  const observed = (o: WithStatus | undefined) => o !== undefined && o.status?.observedGeneration === o.metadata.generation;
  return observed(deployment) && observed(pdb) && (hpa?.status?.conditions?.length ?? 0) > 0;
}

describe("no-op reconcile", () => {
  const fixture = usePipelineFixture();

  test("a realistic application stage is re-checked without a single write request", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "pipe-noop");
    await publishExternalArtifact(fixture.client, namespace, "app", fixture.server.add(`${namespace}-app`, { "app.yaml": APP }));
    let controller = await startTestController(fixture.cluster, namespace);
    try {
      await fixture.client.create({ ...STAGESET, metadata: { name: "app", namespace }, spec: { stages: [{ name: "app", sourceRef: { name: "app" }, readyChecks: { timeout: "60s" } }] } });
      await waitForReason(fixture.client, namespace, "app", "Succeeded", 90_000);
      // The no-op must hold after the cluster's own controllers have written
      // to the applied objects (status, their managedFields entries): wait
      // until the Deployment, HPA and PDB controllers have seen the current
      // generation (the HPA controller's first status comes with its 15s
      // sync), and until the first run is over (its events written), so the
      // counters below see the next run alone.
      await waitFor(() => othersCaughtUp(fixture.client, namespace), { description: "the Deployment, HPA and PDB controllers to write status", timeoutMs: 60_000, intervalMs: 200 });
      await waitForIdle(controller);
      for (let round = 0; round < 2; round++) {
        const running = controller;
        const before = await reconcileCount(running);
        running.client.resetStats();
        running.manager.enqueue(`${namespace}/app`);
        await waitFor(async () => (await reconcileCount(running)) > before, { description: "a no-op reconcile", timeoutMs: 30_000, intervalMs: 20 });
        await running.events.flush(); // an event the run recorded would be a write too
        assert.equal(writeRequests(running), 0, `round ${round}: the no-op reconcile wrote: ${JSON.stringify(running.client.stats())}`);
      }

      // A restarted controller remembers nothing: its first run must find no drift from the live objects alone.
      await controller.stop();
      controller = await startTestController(fixture.cluster, namespace);
      const restarted = controller;
      await waitFor(async () => (await reconcileCount(restarted)) > 0, { description: "the restarted controller's first run", timeoutMs: 30_000, intervalMs: 20 });
      await restarted.events.flush();
      assert.equal(writeRequests(restarted), 0, `after a restart the first run wrote: ${JSON.stringify(restarted.client.stats())}`);
    } finally {
      await controller.stop();
    }
  });
});

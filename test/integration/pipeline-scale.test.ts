// A 1000-object stage: the first apply, then a no-op reconcile that must make
// zero write requests. Times are printed (for the closing note and the
// benchmarks), never asserted.
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { test } from "node:test";
import type { StageSet } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { ArtifactServer } from "../support/artifact-server.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";
import { reconcileCount, startTestController, waitForIdle, writeRequests } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { waitFor } from "../support/wait.js";

const STAGESET = { apiVersion: "stages.metio.wtf/v1", kind: "StageSet" } as const;
const OBJECTS = 1000;

test(`a no-op reconcile of a ${OBJECTS}-object stage makes zero write requests`, async (t) => {
  const cluster = await testCluster();
  const namespace = await createTestNamespace(cluster, "pipe-scale");
  const client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  const server = new ArtifactServer();
  await server.start();
  const files: Record<string, string> = {};
  for (let i = 0; i < OBJECTS; i++) {
    files[`cm-${String(i).padStart(4, "0")}.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  labels: { app: scale }\ndata:\n  index: "${i}"\n  payload: "${"x".repeat(64)}"\n`;
  }
  await publishExternalArtifact(client, namespace, "many", server.add(`${namespace}-many`, files));
  const controller = await startTestController(cluster, namespace, ["--concurrent", "1"]);
  try {
    const started = performance.now();
    await client.create({ ...STAGESET, metadata: { name: "scale", namespace }, spec: { stages: [{ name: "bulk", sourceRef: { name: "many" } }] } });
    const ready = await waitFor(
      async () => {
        const s = await client.get<StageSet>({ ...STAGESET, namespace, name: "scale" });
        return s?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True" ? s : undefined;
      },
      { description: "the 1000-object StageSet Ready", timeoutMs: 300_000, intervalMs: 250 },
    );
    const firstApplyMs = performance.now() - started;
    assert.equal(ready.status?.stages?.[0]?.entriesCount, OBJECTS);

    // Let the first run finish (its status and events written), then count a no-op run.
    await waitForIdle(controller);
    const before = await reconcileCount(controller);
    controller.client.resetStats();
    const noopStarted = performance.now();
    controller.manager.enqueue(`${namespace}/scale`);
    await waitFor(async () => (await reconcileCount(controller)) > before, {
      description: "the no-op reconcile to finish",
      timeoutMs: 60_000,
      intervalMs: 10,
    });
    const noopMs = performance.now() - noopStarted;
    await controller.events.flush(); // an event the run recorded would be a write too
    const stats = controller.client.stats();
    const writes = writeRequests(controller);
    t.diagnostic(`first apply of ${OBJECTS} objects: ${(firstApplyMs / 1000).toFixed(1)}s; no-op reconcile: ${noopMs.toFixed(0)}ms; requests: ${JSON.stringify(stats)}`);
    assert.equal(writes, 0, `the no-op reconcile made write requests: ${JSON.stringify(stats)}`);
  } finally {
    await controller.stop();
    await server.stop();
    client.close();
  }
});

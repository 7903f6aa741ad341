// The controller runtime against the real API server: status on a new
// StageSet, leader election between two instances, and no concurrent
// reconciles of one key under an event burst.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import type { StageSet } from "../../src/api/types.js";
import { Manager, type Caches } from "../../src/controller/manager.js";
import { KubeClient } from "../../src/kube/client.js";
import { EventRecorder } from "../../src/kube/events.js";
import { silentLogger } from "../../src/util/log.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";
import { reconcileCount, startTestController } from "../support/controller.js";
import { waitFor } from "../support/wait.js";

const STAGESET = { apiVersion: "stages.metio.wtf/v1", kind: "StageSet" } as const;

function stageSet(namespace: string, name: string): StageSet {
  return {
    ...STAGESET,
    metadata: { name, namespace },
    spec: { stages: [{ name: "app", sourceRef: { name: `${name}-artifact` } }] },
  };
}

async function readyOf(client: KubeClient, namespace: string, name: string) {
  const obj = await client.get<StageSet>({ ...STAGESET, namespace, name });
  return { obj, ready: obj?.status?.conditions?.find((c) => c.type === "Ready") };
}

describe("controller runtime", { concurrency: true }, () => {
  test("a new StageSet gets observedGeneration and a Ready condition with a clear reason", async () => {
    const cluster = await testCluster();
    const namespace = await createTestNamespace(cluster, "ctl-status");
    const client = KubeClient.fromKubeConfig(cluster.kubeConfig);
    const controller = await startTestController(cluster, namespace);
    try {
      await client.create(stageSet(namespace, "hello"));
      const { obj, ready } = await waitFor(
        async () => {
          const r = await readyOf(client, namespace, "hello");
          return r.ready && r.obj?.status?.observedGeneration === r.obj?.metadata.generation ? r : undefined;
        },
        { description: "StageSet hello to get a Ready condition", timeoutMs: 30_000 },
      );
      assert.equal(obj?.status?.observedGeneration, 1);
      assert.equal(ready?.status, "False");
      assert.equal(ready?.reason, "SourceNotReady");
      assert.match(ready?.message ?? "", /hello-artifact/, "the message names the missing source");
      assert.match(ready?.message ?? "", /app/, "the message names the stage");
    } finally {
      await controller.stop();
      client.close();
    }
  });

  test("only the lease holder reconciles; when it stops the other takes over within the lease duration", async () => {
    const cluster = await testCluster();
    const namespace = await createTestNamespace(cluster, "ctl-leader");
    const client = KubeClient.fromKubeConfig(cluster.kubeConfig);
    const leFlags = [
      "--leader-elect",
      "--leader-election-namespace",
      namespace,
      "--leader-election-lease-duration",
      "4s",
      "--leader-election-renew-deadline",
      "3s",
      "--leader-election-retry-period",
      "500ms",
    ];
    const first = await startTestController(cluster, namespace, leFlags, { identity: "first" });
    await waitFor(() => first.manager.isLeader(), { description: "the first instance to lead", timeoutMs: 15_000 });
    const second = await startTestController(cluster, namespace, leFlags, { identity: "second" });
    try {
      await client.create(stageSet(namespace, "led"));
      await waitFor(async () => (await readyOf(client, namespace, "led")).ready, { description: "the leader to reconcile", timeoutMs: 30_000 });
      await sleep(1_000);
      assert.equal(second.manager.isLeader(), false);
      assert.ok((await reconcileCount(first)) > 0, "the leader reconciled");
      assert.equal(await reconcileCount(second), 0, "the standby never reconciled");
      const lease = await client.get({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace, name: "stageset-controller.stages.metio.wtf" });
      assert.equal((lease?.spec as { holderIdentity?: string }).holderIdentity, "first");

      const stoppedAt = Date.now();
      await first.stop();
      await waitFor(() => second.manager.isLeader(), { description: "the second instance to take over", timeoutMs: 15_000, intervalMs: 100 });
      const takeoverMs = Date.now() - stoppedAt;
      // The lease expires at most 4s after the last renewal; a candidate notices within one
      // 500ms retry period; 2s of slack keeps a loaded CI machine from failing the test.
      assert.ok(takeoverMs <= 4_000 + 500 + 2_000, `takeover took ${takeoverMs}ms, well past the 4s lease duration`);

      await client.patch({ ...STAGESET, namespace, name: "led" }, { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "after-takeover" } } }, "merge");
      await waitFor(
        async () => (await readyOf(client, namespace, "led")).obj?.status?.lastHandledReconcileAt === "after-takeover",
        { description: "the new leader to handle the reconcile request", timeoutMs: 30_000 },
      );
      assert.ok((await reconcileCount(second)) > 0, "the new leader reconciled");
    } finally {
      await first.stop();
      await second.stop();
      client.close();
    }
  });

  test("a burst of events for one StageSet never runs two reconciles of it at once", async () => {
    const cluster = await testCluster();
    const namespace = await createTestNamespace(cluster, "ctl-burst");
    const client = KubeClient.fromKubeConfig(cluster.kubeConfig);
    const REQUESTED = "reconcile.fluxcd.io/requestedAt";
    let running = 0;
    let maxRunning = 0;
    const seen: (string | undefined)[] = [];
    // The first run is held until the whole burst has reached the cache, so every event arrives while the key is processed.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let cache: Caches | undefined;
    const manager = new Manager({
      client,
      log: silentLogger(),
      events: new EventRecorder(client),
      watchNamespaces: [namespace],
      concurrency: 4,
      reconcilerFactory: (caches) => {
        cache = caches;
        return async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          seen.push(caches.stageSets.get(namespace, "burst")?.metadata.annotations?.[REQUESTED]);
          if (seen.length === 1) await held;
          running--;
        };
      },
    });
    await client.create(stageSet(namespace, "burst"));
    await manager.start();
    try {
      await waitFor(() => running === 1, { description: "the first reconcile", timeoutMs: 30_000, intervalMs: 10 });
      for (let i = 0; i < 30; i++) {
        await client.patch({ ...STAGESET, namespace, name: "burst" }, { metadata: { annotations: { [REQUESTED]: `t${i}` } } }, "merge");
      }
      await waitFor(() => cache?.stageSets.get(namespace, "burst")?.metadata.annotations?.[REQUESTED] === "t29", {
        description: "the burst's last event in the cache",
        timeoutMs: 30_000,
        intervalMs: 10,
      });
      release();
      await waitFor(() => seen.includes("t29") && running === 0, { description: "a run that saw the last event", timeoutMs: 30_000, intervalMs: 10 });
      assert.equal(maxRunning, 1, "never two reconciles of one key at once");
      assert.deepEqual(seen, [undefined, "t29"], "the 30 events during the first run collapsed into one follow-up run");
    } finally {
      await manager.stop();
      client.close();
    }
  });
});

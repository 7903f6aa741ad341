// The controller runtime against the real API server: status on a new
// StageSet, leader election between two instances, and no concurrent
// reconciles of one key under an event burst.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { StageSet } from "../../src/api/types.js";
import { Manager, type Caches } from "../../src/controller/manager.js";
import { KubeClient } from "../../src/kube/client.js";
import { EventRecorder } from "../../src/kube/events.js";
import { silentLogger } from "../../src/util/log.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";
import { reconcileCount, startTestController } from "../support/controller.js";
import { FakeClock } from "../support/fake-clock.js";
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

  test("only the lease holder reconciles; when it stops the other takes over a lease duration after the last renewal", async () => {
    const cluster = await testCluster();
    const namespace = await createTestNamespace(cluster, "ctl-leader");
    const client = KubeClient.fromKubeConfig(cluster.kubeConfig);
    // Both instances' leader election (and work queues) run on one FakeClock:
    // each round waits until both electors are parked in a pause, so the real
    // API round trips take no fake time and the takeover bounds are exact.
    const clock = new FakeClock();
    // The production defaults, as flags.
    const lease = { durationMs: 15_000, retryPeriodMs: 2_000 };
    const maxCampaignPause = lease.retryPeriodMs * 1.2;
    const plenty = 10 * 60_000;
    const leFlags = [
      "--leader-elect",
      "--leader-election-namespace",
      namespace,
      "--leader-election-lease-duration",
      "15s",
      "--leader-election-renew-deadline",
      "10s",
      "--leader-election-retry-period",
      "2s",
    ];
    const first = await startTestController(cluster, namespace, leFlags, { identity: "first", clock });
    await clock.run(plenty, 1, () => first.manager.isLeader());
    assert.ok(first.manager.isLeader(), "the first instance leads");
    const second = await startTestController(cluster, namespace, leFlags, { identity: "second", clock });
    try {
      await client.create(stageSet(namespace, "led"));
      await waitFor(async () => (await readyOf(client, namespace, "led")).ready, { description: "the leader to reconcile", timeoutMs: 30_000 });
      // Two lease durations: the leader renews every retry period, the standby campaigns all along.
      await clock.run(2 * lease.durationMs, 2);
      assert.equal(first.manager.isLeader(), true, "the leader kept renewing");
      assert.equal(second.manager.isLeader(), false, "the standby never acquired the lease");
      assert.ok((await reconcileCount(first)) > 0, "the leader reconciled");
      assert.equal(await reconcileCount(second), 0, "the standby never reconciled");
      const held = await client.get({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace, name: "stageset-controller.stages.metio.wtf" });
      assert.equal((held?.spec as { holderIdentity?: string }).holderIdentity, "first");

      const stoppedAt = clock.now();
      await first.stop();
      // Time stays where the round that saw the takeover left it: the time of the winning attempt.
      await clock.run(plenty, 1, () => second.manager.isLeader());
      assert.ok(second.manager.isLeader(), "the second instance takes over");
      const takeoverMs = clock.now() - stoppedAt;
      // The leader renewed within one retry period before the stop (no release
      // on stop); the standby saw that renewal within one campaign pause and
      // wins at its first attempt a lease duration after it saw it.
      assert.ok(takeoverMs >= lease.durationMs - lease.retryPeriodMs, `took over too early: ${takeoverMs}ms after the stop`);
      assert.ok(takeoverMs <= lease.durationMs + 2 * maxCampaignPause, `took over ${takeoverMs}ms after the stop`);

      await client.patch({ ...STAGESET, namespace, name: "led" }, { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "after-takeover" } } }, "merge");
      await waitFor(
        async () => (await readyOf(client, namespace, "led")).obj?.status?.lastHandledReconcileAt === "after-takeover",
        { description: "the new leader to handle the reconcile request", timeoutMs: 30_000 },
      );
      // The reconcile counter moves after the reconcile's last status write, so it can trail what the status shows.
      await waitFor(async () => (await reconcileCount(second)) > 0, { description: "the new leader's reconcile to be counted", timeoutMs: 10_000 });
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

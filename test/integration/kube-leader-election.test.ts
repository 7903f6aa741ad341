// Leader election on a real Lease: one leader at a time, takeover after the
// lease expires (not released by default), immediate takeover with release,
// and a leader that cannot renew stops at its renew deadline.
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { after, before, describe, test } from "node:test";
import { KubeClient } from "../../src/kube/client.js";
import { LEASE_NAME, LeaderElector, type LeaseClient } from "../../src/kube/leader-election.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { waitFor } from "../support/wait.js";

let cluster: TestCluster;
let client: KubeClient;

before(async () => {
  cluster = await testCluster();
  client = KubeClient.fromKubeConfig(cluster.kubeConfig);
});

after(() => client.close());

// Short, whole-second lease (the Lease stores seconds) so the test runs in seconds.
const timing = { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 250 };

interface Candidate {
  elector: LeaderElector;
  started: number[];
  stopped: number[];
  signal?: AbortSignal;
}

function candidate(namespace: string, identity: string, leaseClient: LeaseClient = client, releaseOnCancel = false): Candidate {
  const c: Candidate = { started: [], stopped: [] } as unknown as Candidate;
  c.elector = new LeaderElector(leaseClient, {
    namespace,
    identity,
    ...timing,
    releaseOnCancel,
    onStartedLeading: (signal) => {
      c.started.push(performance.now());
      c.signal = signal;
    },
    onStoppedLeading: () => c.stopped.push(performance.now()),
  });
  void c.elector.run();
  return c;
}

const lease = (namespace: string) =>
  client.get<{ spec: { holderIdentity: string; leaseTransitions: number } } & import("../../src/api/types.js").KubeObject>({
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    namespace,
    name: LEASE_NAME,
  });

describe("LeaderElector", () => {
  test("only one of two candidates leads; the other takes over within the lease duration after it stops", async () => {
    const namespace = await createTestNamespace(cluster, "leader");
    const a = candidate(namespace, "a");
    await waitFor(() => a.elector.isLeader(), { description: "a leads", timeoutMs: 10_000 });
    const b = candidate(namespace, "b");
    // b keeps campaigning for several renew periods without winning.
    await new Promise((r) => setTimeout(r, timing.leaseDurationMs * 1.5));
    assert.ok(a.elector.isLeader());
    assert.equal(b.elector.isLeader(), false);
    assert.equal(b.started.length, 0);
    assert.equal((await lease(namespace))?.spec.holderIdentity, "a");

    const stoppedAt = performance.now();
    await a.elector.stop();
    assert.equal(a.stopped.length, 1, "onStoppedLeading ran once");
    assert.equal(a.signal?.aborted, true);
    assert.equal((await lease(namespace))?.spec.holderIdentity, "a", "not released eagerly");

    await waitFor(() => b.elector.isLeader(), { description: "b takes over", timeoutMs: 10_000, intervalMs: 20 });
    const takeoverMs = performance.now() - stoppedAt;
    // b saw the last renewal up to one retry period late and polls every retry period (jittered).
    assert.ok(takeoverMs <= timing.leaseDurationMs + 3 * timing.retryPeriodMs + 500, `took over after ${takeoverMs}ms`);
    assert.ok(takeoverMs >= timing.leaseDurationMs - timing.retryPeriodMs - 100, `took over too early: ${takeoverMs}ms`);
    const held = await lease(namespace);
    assert.equal(held?.spec.holderIdentity, "b");
    assert.equal(held?.spec.leaseTransitions, 1);
    await b.elector.stop();
  });

  test("with releaseOnCancel the successor takes over at once", async () => {
    const namespace = await createTestNamespace(cluster, "leader-release");
    const a = candidate(namespace, "a", client, true);
    await waitFor(() => a.elector.isLeader(), { description: "a leads", timeoutMs: 10_000 });
    const b = candidate(namespace, "b");
    await new Promise((r) => setTimeout(r, timing.retryPeriodMs * 2));
    const stoppedAt = performance.now();
    await a.elector.stop();
    await waitFor(() => b.elector.isLeader(), { description: "b takes over", timeoutMs: 10_000, intervalMs: 20 });
    const takeoverMs = performance.now() - stoppedAt;
    assert.ok(takeoverMs < timing.leaseDurationMs - timing.retryPeriodMs, `took over after ${takeoverMs}ms`);
    await b.elector.stop();
  });

  test("a leader that cannot renew stops leading at its renew deadline, before the lease expires for others", async () => {
    const namespace = await createTestNamespace(cluster, "leader-deadline");
    // The candidate's requests go through a switch: the admin identity first,
    // then a ServiceAccount with no rights, so every renewal is really refused.
    let current: KubeClient = client;
    const switching: LeaseClient = {
      get: (ref, options) => current.get(ref, options),
      create: (obj, options) => current.create(obj, options),
      update: (obj, options) => current.update(obj, options),
    };
    const errors: unknown[] = [];
    const started: number[] = [];
    const stopped: number[] = [];
    let signal: AbortSignal | undefined;
    const elector = new LeaderElector(switching, {
      namespace,
      identity: "a",
      ...timing,
      onStartedLeading: (s) => {
        started.push(performance.now());
        signal = s;
      },
      onStoppedLeading: () => stopped.push(performance.now()),
      onError: (err) => errors.push(err),
    });
    const running = elector.run();
    await waitFor(() => elector.isLeader(), { description: "a leads", timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, timing.retryPeriodMs * 2));
    const cutAt = performance.now();
    current = client.asServiceAccount(namespace, "nobody");
    await running;
    const lostAfter = stopped[0]! - cutAt;
    assert.equal(elector.isLeader(), false);
    assert.equal(signal?.aborted, true);
    assert.ok(lostAfter <= timing.renewDeadlineMs + 300, `stopped ${lostAfter}ms after renewals began failing`);
    assert.ok(lostAfter < timing.leaseDurationMs, "stopped before anyone else could take the lease");
    assert.ok(errors.some((e) => /Forbidden|forbidden/.test(String(e))));
  });

  test("rejects inconsistent timing", () => {
    assert.throws(
      () =>
        new LeaderElector(client, {
          namespace: "x",
          leaseDurationMs: 1000,
          renewDeadlineMs: 2000,
          onStartedLeading: () => {},
          onStoppedLeading: () => {},
        }),
      /leaseDuration > renewDeadline > retryPeriod/,
    );
  });
});

// Leader election on a real Lease: one leader at a time, takeover after the
// lease expires (not released by default), immediate takeover with release,
// and a leader that cannot renew stops at its renew deadline.
//
// The electors' time runs on a FakeClock the test advances (each round waits
// until every elector is parked in a pause, so the real API round trips in
// between take no fake time): the lease timings are the production defaults
// and the takeover bounds are exact, however slow the machine.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KubeClient } from "../../src/kube/client.js";
import { LEASE_NAME, LeaderElector, type LeaseClient } from "../../src/kube/leader-election.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { FakeClock } from "../support/fake-clock.js";

let cluster: TestCluster;
let client: KubeClient;

before(async () => {
  cluster = await testCluster();
  client = KubeClient.fromKubeConfig(cluster.kubeConfig);
});

after(() => client.close());

// The defaults: lease 15s, renew deadline 10s, retry every 2s (campaigns jitter it to 1.2–2.4s).
const timing = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
const MAX_CAMPAIGN_PAUSE = timing.retryPeriodMs * 1.2;
/** Long enough for anything that should happen in these tests. */
const PLENTY = 10 * 60_000;

interface Candidate {
  elector: LeaderElector;
  /** Fake times of onStartedLeading / onStoppedLeading. */
  started: number[];
  stopped: number[];
  signal?: AbortSignal;
  errors: unknown[];
  /** Settles when `run` returns. */
  running: Promise<void>;
  /** Whether `run` is still going (a loop that can park on the clock). */
  alive: boolean;
}

function candidate(clock: FakeClock, namespace: string, identity: string, leaseClient: LeaseClient = client, releaseOnCancel = false): Candidate {
  const c = { started: [], stopped: [], errors: [], alive: true } as unknown as Candidate;
  c.elector = new LeaderElector(leaseClient, {
    namespace,
    identity,
    ...timing,
    releaseOnCancel,
    clock,
    onStartedLeading: (signal) => {
      c.started.push(clock.now());
      c.signal = signal;
    },
    onStoppedLeading: () => c.stopped.push(clock.now()),
    onError: (err) => c.errors.push(err),
  });
  c.running = c.elector.run().finally(() => (c.alive = false));
  return c;
}

/** How many of the candidates' loops are still running. */
const live = (...candidates: Candidate[]) => () => candidates.filter((c) => c.alive).length;

const lease = (namespace: string) =>
  client.get<{ spec: { holderIdentity: string; leaseTransitions: number } } & import("../../src/api/types.js").KubeObject>({
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    namespace,
    name: LEASE_NAME,
  });

describe("LeaderElector", () => {
  test("only one of two candidates leads; the other takes over a lease duration after the last renewal it saw", async () => {
    const namespace = await createTestNamespace(cluster, "leader");
    const clock = new FakeClock();
    const a = candidate(clock, namespace, "a");
    await clock.run(PLENTY, live(a), () => a.elector.isLeader());
    assert.ok(a.elector.isLeader(), "a leads");
    const b = candidate(clock, namespace, "b");
    // b campaigns for a lease duration and a half while a renews every retry period.
    await clock.run(timing.leaseDurationMs * 1.5, live(a, b));
    assert.ok(a.elector.isLeader());
    assert.equal(b.elector.isLeader(), false);
    assert.equal(b.started.length, 0);
    assert.equal((await lease(namespace))?.spec.holderIdentity, "a");

    const stoppedAt = clock.now();
    await a.elector.stop();
    assert.deepEqual(a.stopped, [stoppedAt], "onStoppedLeading ran once, at the stop");
    assert.equal(a.signal?.aborted, true);
    assert.equal((await lease(namespace))?.spec.holderIdentity, "a", "not released eagerly");

    await clock.run(PLENTY, live(b), () => b.elector.isLeader());
    assert.ok(b.elector.isLeader(), "b takes over");
    const takeoverMs = b.started[0]! - stoppedAt;
    // a renewed within one retry period before the stop; b saw that renewal
    // within one campaign pause and takes over at its first attempt at least
    // a lease duration later.
    assert.ok(takeoverMs >= timing.leaseDurationMs - timing.retryPeriodMs, `took over too early: ${takeoverMs}ms`);
    assert.ok(takeoverMs <= timing.leaseDurationMs + 2 * MAX_CAMPAIGN_PAUSE, `took over after ${takeoverMs}ms`);
    const held = await lease(namespace);
    assert.equal(held?.spec.holderIdentity, "b");
    assert.equal(held?.spec.leaseTransitions, 1);
    await b.elector.stop();
  });

  test("with releaseOnCancel the successor takes over at its next attempt", async () => {
    const namespace = await createTestNamespace(cluster, "leader-release");
    const clock = new FakeClock();
    const a = candidate(clock, namespace, "a", client, true);
    await clock.run(PLENTY, live(a), () => a.elector.isLeader());
    const b = candidate(clock, namespace, "b");
    await clock.run(timing.retryPeriodMs * 2, live(a, b));
    assert.equal(b.elector.isLeader(), false);
    const stoppedAt = clock.now();
    await a.elector.stop();
    assert.equal((await lease(namespace))?.spec.holderIdentity, "", "released");
    await clock.run(PLENTY, live(b), () => b.elector.isLeader());
    const takeoverMs = b.started[0]! - stoppedAt;
    assert.ok(takeoverMs <= MAX_CAMPAIGN_PAUSE, `took over after ${takeoverMs}ms`);
    await b.elector.stop();
  });

  test("a leader that cannot renew stops leading at its renew deadline, before the lease expires for others", async () => {
    const namespace = await createTestNamespace(cluster, "leader-deadline");
    const clock = new FakeClock();
    // The candidate's requests go through a switch: the admin identity first,
    // then a ServiceAccount with no rights, so every renewal is really refused.
    let current: KubeClient = client;
    const switching: LeaseClient = {
      get: (ref, options) => current.get(ref, options),
      create: (obj, options) => current.create(obj, options),
      update: (obj, options) => current.update(obj, options),
    };
    const a = candidate(clock, namespace, "a", switching);
    await clock.run(PLENTY, live(a), () => a.elector.isLeader());
    await clock.run(timing.retryPeriodMs * 2 + 500, live(a));
    assert.ok(a.elector.isLeader());
    // The elector is parked in a pause, so the last renewal was less than one retry period ago.
    const cutAt = clock.now();
    current = client.asServiceAccount(namespace, "nobody");
    await clock.run(PLENTY, live(a), () => !a.alive);
    await a.running;
    assert.equal(a.elector.isLeader(), false);
    assert.equal(a.signal?.aborted, true);
    assert.equal(a.stopped.length, 1);
    const lostAfter = a.stopped[0]! - cutAt;
    assert.ok(lostAfter <= timing.renewDeadlineMs, `stopped ${lostAfter}ms after renewals began failing`);
    assert.ok(lostAfter > timing.renewDeadlineMs - timing.retryPeriodMs, `stopped too early: ${lostAfter}ms`);
    assert.ok(lostAfter < timing.leaseDurationMs, "stopped before anyone else could take the lease");
    assert.ok(a.errors.some((e) => /Forbidden|forbidden/.test(String(e))));
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

// The apply, prune and CRD deadline waits against a real API server, their
// time on a FakeClock: an object held by a finalizer makes each wait run to
// its deadline, which takes no real time, and the message names what is
// still there.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { waitForServedKinds } from "../../src/apply/crds.js";
import { applyStage } from "../../src/apply/engine.js";
import { waitUntilGone } from "../../src/apply/prune.js";
import { StageFailedError } from "../../src/errors.js";
import { KubeClient } from "../../src/kube/client.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";
import { FakeClock } from "../support/fake-clock.js";

let client: KubeClient;
let cluster: Awaited<ReturnType<typeof testCluster>>;

before(async () => {
  cluster = await testCluster();
  client = KubeClient.fromKubeConfig(cluster.kubeConfig);
});

const HOLD = "example.com/hold";

const configMap = (name: string, data: Record<string, string>, extra: Partial<KubeObject> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name },
  data,
  ...extra,
});

const ref = (namespace: string, name: string) => ({ apiVersion: "v1", kind: "ConfigMap", namespace, name });

/** Adds (or with `[]` removes) finalizers as another client would. */
const setFinalizers = (namespace: string, name: string, finalizers: string[]) =>
  client.patch(ref(namespace, name), { metadata: { finalizers: finalizers.length ? finalizers : null } }, "merge");

const total = (ms: readonly number[]) => ms.reduce((a, b) => a + b, 0);

describe("deadline waits on an injected clock", () => {
  test("a Recreate waits for the old object until deleteTimeoutMs of the clock, naming its finalizers", async () => {
    const ns = await createTestNamespace(cluster, "apply-waits-recreate");
    const stageSet = { name: "shop", namespace: ns };
    const frozen = (v: string) => configMap("frozen", { v }, { immutable: true });
    const recreate = { rules: [{ target: { kind: "ConfigMap" }, action: "Recreate" as const }] };
    await applyStage({ client, stageSet, stage: "app", objects: [frozen("1")] });
    await setFinalizers(ns, "frozen", [HOLD]);

    const clock = new FakeClock({ autoAdvance: true });
    await assert.rejects(
      applyStage({ client, stageSet, stage: "app", objects: [frozen("2")], conflictPolicy: recreate, deleteTimeoutMs: 10_000, clock }),
      (err: unknown) => {
        assert.ok(err instanceof StageFailedError, String(err));
        assert.equal(
          err.message,
          `stage "app": ConfigMap ${ns}/frozen was deleted to be recreated but still exists after 10000ms (finalizers: ${HOLD}); ` +
            `the next run retries once it is gone`,
        );
        return true;
      },
    );
    assert.equal(total(clock.sleeps), 10_000, "waited exactly the timeout, on the clock");
    assert.ok(clock.sleeps.every((ms) => ms <= 200), "polling every 200ms of it");

    await setFinalizers(ns, "frozen", []);
    await applyStage({ client, stageSet, stage: "app", objects: [frozen("2")], conflictPolicy: recreate, clock: new FakeClock({ autoAdvance: true }) });
    assert.deepEqual((await client.get(ref(ns, "frozen")))?.data, { v: "2" });
  });

  test("waitUntilGone polls on the clock to its deadline and names the objects still there", async () => {
    const ns = await createTestNamespace(cluster, "apply-waits-gone");
    await client.create({ ...configMap("held", {}), metadata: { name: "held", namespace: ns, finalizers: [HOLD] } });
    await client.create({ ...configMap("free", {}), metadata: { name: "free", namespace: ns } });
    await client.delete(ref(ns, "held"));
    await client.delete(ref(ns, "free"));

    const clock = new FakeClock({ autoAdvance: true });
    const refs = [ref(ns, "held"), ref(ns, "free")];
    await assert.rejects(
      waitUntilGone(client, refs, { timeoutMs: 300_000, intervalMs: 60_000, what: "pruning stage app", clock }),
      (err: unknown) => {
        assert.ok(err instanceof StageFailedError, String(err));
        assert.equal(
          err.message,
          `pruning stage app: ConfigMap ${ns}/held (finalizers: ${HOLD}) still exist 300000ms after deletion; the next run waits for them again`,
        );
        return true;
      },
    );
    assert.deepEqual(clock.sleeps, [60_000, 60_000, 60_000, 60_000, 60_000]);

    await setFinalizers(ns, "held", []);
    const after = new FakeClock({ autoAdvance: true });
    await waitUntilGone(client, refs, { timeoutMs: 300_000, intervalMs: 60_000, what: "pruning stage app", clock: after });
    assert.deepEqual(after.sleeps, [], "gone at the first look once the finalizer is removed");
  });

  test("waitForServedKinds gives up on a kind discovery never serves at its deadline on the clock", async () => {
    const clock = new FakeClock({ autoAdvance: true });
    await assert.rejects(
      waitForServedKinds(client, [], [{ apiVersion: "never.example.com/v1", kind: "Ghost" }], {
        stage: "operator",
        timeoutMs: 30_000,
        intervalMs: 10_000,
        clock,
      }),
      (err: unknown) => {
        assert.ok(err instanceof StageFailedError, String(err));
        assert.match(err.message, /^stage "operator": gave up after 30000ms waiting for discovery to serve Ghost in never\.example\.com\/v1;/);
        return true;
      },
    );
    assert.deepEqual(clock.sleeps, [10_000, 10_000, 10_000]);
  });
});

// The informer against a real API server: it mirrors adds, updates and
// deletes, keeps its indexes in step, honours a namespace list, resyncs,
// and relists when the API server says its resourceVersion is gone. Resync
// and reconnect backoff run on a FakeClock the tests advance: no sleeps.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { Informer, type ListWatchClient } from "../../src/kube/informer.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { FakeClock } from "../support/fake-clock.js";
import { waitFor } from "../support/wait.js";
import { widgetCrd } from "../support/widgets.js";

let cluster: TestCluster;
let client: KubeClient;

before(async () => {
  cluster = await testCluster();
  client = KubeClient.fromKubeConfig(cluster.kubeConfig);
});

after(() => client.close());

const configMap = (namespace: string, name: string, labels: Record<string, string> = {}, data = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace, labels },
  data,
});

/** A throw-away namespaced CRD in a group of its own; its watch cache starts now. */
async function installWidgetCrd(): Promise<{ apiVersion: string; remove: () => Promise<void> }> {
  const group = `t${randomBytes(4).toString("hex")}.stages.test`;
  const ref = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name: `widgets.${group}` };
  await client.create(widgetCrd(group));
  return { apiVersion: `${group}/v1`, remove: async () => void (await client.delete(ref)) };
}

const until = (description: string, predicate: () => boolean) =>
  waitFor(() => predicate(), { description, timeoutMs: 15_000, intervalMs: 20 });

describe("Informer", () => {
  test("lists, then mirrors adds, updates and deletes into cache, handlers and indexes", async () => {
    const namespace = await createTestNamespace(cluster, "informer");
    await client.create(configMap(namespace, "pre-existing", { team: "a" }));
    const informer = new Informer(client, { apiVersion: "v1", kind: "ConfigMap", namespaces: [namespace] });
    informer.addIndex("team", (o) => (o.metadata.labels?.team ? [o.metadata.labels.team] : []));
    const log: string[] = [];
    informer.addHandlers({
      onAdd: (o) => log.push(`add ${o.metadata.name}`),
      onUpdate: (old, cur) => log.push(`update ${cur.metadata.name} ${String((old.data as Record<string, string>)?.v)}->${String((cur.data as Record<string, string>)?.v)}`),
      onDelete: (o) => log.push(`delete ${o.metadata.name}`),
    });
    assert.equal(informer.hasSynced(), false);
    informer.start();
    try {
      assert.equal(await informer.waitForSync(), true);
      assert.ok(informer.hasSynced());
      assert.equal(informer.get(namespace, "pre-existing")?.kind, "ConfigMap");
      assert.deepEqual(informer.byIndex("team", "a").map((o) => o.metadata.name), ["pre-existing"]);

      await client.create(configMap(namespace, "fresh", { team: "b" }, { v: "1" }));
      await until("fresh in cache", () => informer.get(namespace, "fresh") !== undefined);
      await client.patch({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "fresh" }, { data: { v: "2" }, metadata: { labels: { team: "a" } } }, "merge");
      await until("fresh updated", () => (informer.get(namespace, "fresh")?.data as Record<string, string>)?.v === "2");
      assert.deepEqual(informer.byIndex("team", "a").map((o) => o.metadata.name).sort(), ["fresh", "pre-existing"]);
      assert.deepEqual(informer.byIndex("team", "b"), [], "the old index key was unfiled");

      await client.delete({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "pre-existing" });
      await until("pre-existing gone", () => informer.get(namespace, "pre-existing") === undefined);
      assert.deepEqual(informer.byIndex("team", "a").map((o) => o.metadata.name), ["fresh"]);

      const names = informer.list(namespace).map((o) => o.metadata.name);
      assert.ok(names.includes("fresh") && !names.includes("pre-existing"));
      assert.deepEqual(log.filter((l) => !l.startsWith("add kube-root-ca")), [
        "add pre-existing",
        "add fresh",
        "update fresh 1->2",
        "delete pre-existing",
      ]);

      // A handler registered late hears about what is already cached.
      const late: string[] = [];
      informer.addHandlers({ onAdd: (o) => late.push(o.metadata.name!) });
      assert.ok(late.includes("fresh"));
    } finally {
      await informer.stop();
    }
  });

  test("watches only the listed namespaces, through the label selector", async () => {
    const watched1 = await createTestNamespace(cluster, "informer-w1");
    const watched2 = await createTestNamespace(cluster, "informer-w2");
    const ignored = await createTestNamespace(cluster, "informer-x");
    // Every list and watch the informer makes, by namespace ("*" for cluster-wide).
    const requests: string[] = [];
    const recording: ListWatchClient = {
      listAll: <T extends KubeObject>(v: string, k: string, options?: Parameters<KubeClient["listAll"]>[2]) => {
        requests.push(`list ${options?.namespace ?? "*"} ${options?.labelSelector ?? ""}`);
        return client.listAll<T>(v, k, options);
      },
      watch: <T extends KubeObject>(v: string, k: string, options?: Parameters<KubeClient["watch"]>[2]) => {
        requests.push(`watch ${options?.namespace ?? "*"} ${options?.labelSelector ?? ""}`);
        return client.watch<T>(v, k, options);
      },
    };
    const informer = new Informer(recording, {
      apiVersion: "v1",
      kind: "ConfigMap",
      namespaces: [watched1, watched2],
      labelSelector: "scoped=yes",
    });
    informer.start();
    try {
      await informer.waitForSync();
      // In each watched namespace an unlabelled ConfigMap comes first: a
      // namespace's watch delivers in order, so had the selector been dropped
      // it would be cached by the time its labelled successor is.
      for (const ns of [watched1, watched2]) await client.create(configMap(ns, "unscoped"));
      for (const ns of [watched1, watched2, ignored]) await client.create(configMap(ns, "cm", { scoped: "yes" }));
      await until("the labelled ConfigMaps of both watched namespaces seen", () => informer.get(watched1, "cm") !== undefined && informer.get(watched2, "cm") !== undefined);
      assert.deepEqual(informer.list().map((o) => `${o.metadata.namespace}/${o.metadata.name}`).sort(), [`${watched1}/cm`, `${watched2}/cm`].sort());
      // The ignored namespace's object could only arrive through a request
      // that covers it: none was made.
      assert.deepEqual(
        [...new Set(requests)].sort(),
        [`list ${watched1} scoped=yes`, `list ${watched2} scoped=yes`, `watch ${watched1} scoped=yes`, `watch ${watched2} scoped=yes`].sort(),
      );
      assert.equal(informer.get(ignored, "cm"), undefined);
    } finally {
      await informer.stop();
    }
  });

  test("relists after the API server answers 410 Gone, catching changes missed meanwhile", async () => {
    const namespace = await createTestNamespace(cluster, "informer-gone");
    const { apiVersion, remove } = await installWidgetCrd();
    try {
      const widget = (name: string): KubeObject => ({ apiVersion, kind: "Widget", metadata: { name, namespace } });
      await waitFor(() => client.create(widget("before")).catch(() => undefined), {
        description: "the Widget CRD serves",
        timeoutMs: 30_000,
      });
      let lists = 0;
      // The first list claims resourceVersion "1". The Widget watch cache
      // started when the CRD was installed, so the API server really answers
      // the watch that follows with 410 Expired.
      const staleOnce: ListWatchClient = {
        listAll: async <T extends KubeObject>(v: string, k: string, options?: Parameters<KubeClient["listAll"]>[2]) => {
          const list = await client.listAll<T>(v, k, options);
          if (++lists === 1) {
            await client.create(widget("missed-by-first-list"));
            return { ...list, resourceVersion: "1" };
          }
          return list;
        },
        watch: (v, k, options) => client.watch(v, k, options),
      };
      const errors: unknown[] = [];
      const informer = new Informer(staleOnce, {
        apiVersion,
        kind: "Widget",
        namespaces: [namespace],
        onError: (err) => errors.push(err),
      });
      informer.start();
      try {
        await informer.waitForSync();
        await until("the relist found the object the first list missed", () => informer.get(namespace, "missed-by-first-list") !== undefined);
        assert.equal(lists, 2);
        assert.deepEqual(errors, [], "a 410 is routine, not an error");
        await client.create(widget("after"));
        await until("the new watch works", () => informer.get(namespace, "after") !== undefined);
      } finally {
        await informer.stop();
      }
    } finally {
      await remove();
    }
  });

  test("resync re-delivers cached objects to onUpdate with old === new, once per period, until stopped", async () => {
    const namespace = await createTestNamespace(cluster, "informer-resync");
    await client.create(configMap(namespace, "steady"));
    const clock = new FakeClock();
    const period = 30 * 60_000; // the controller's StageSet resync
    const informer = new Informer(client, {
      apiVersion: "v1",
      kind: "ConfigMap",
      namespaces: [namespace],
      fieldSelector: "metadata.name=steady",
      resyncPeriodMs: period,
      clock,
    });
    let resyncs = 0;
    informer.addHandlers({ onUpdate: (old, cur) => void (old === cur && resyncs++) });
    informer.start();
    try {
      await informer.waitForSync();
      assert.ok(informer.get(namespace, "steady"));
      await clock.advance(period - 1);
      assert.equal(resyncs, 0, "no resync before a full period");
      await clock.advance(1);
      assert.equal(resyncs, 1, "one resync at the period");
      await clock.advance(2 * period);
      assert.equal(resyncs, 3, "one more per period");
    } finally {
      await informer.stop();
    }
    assert.equal(clock.pending, 0, "stop cancels the resync timer");
    await clock.advance(10 * period);
    assert.equal(resyncs, 3, "no resync after stop");
  });

  test("keeps retrying while the API refuses, backing off 800ms doubling to 30s, and waitForSync gives up on abort", async () => {
    const namespace = await createTestNamespace(cluster, "informer-denied");
    const errors: unknown[] = [];
    const denied = client.asServiceAccount(namespace, "nobody");
    const clock = new FakeClock();
    const informer = new Informer(denied, {
      apiVersion: "v1",
      kind: "ConfigMap",
      namespaces: [namespace],
      onError: (err) => errors.push(err),
      clock,
    });
    informer.start();
    try {
      const failures = 8;
      // Each round: the list is refused for real, then the loop pauses on the clock; move time to the pause's end.
      for (let i = 1; i <= failures; i++) {
        await clock.whenSleeping(1);
        assert.equal(errors.length, i, `one refused list per attempt (attempt ${i})`);
        if (i < failures) assert.ok(await clock.step(), "the pause is due");
      }
      assert.match(String(errors[0]), /Forbidden|forbidden/);
      assert.equal(clock.sleeps.length, failures);
      clock.sleeps.forEach((ms, attempt) => {
        const full = Math.min(800 * 2 ** attempt, 30_000);
        assert.ok(ms >= full / 2 && ms <= full, `pause ${attempt} was ${ms}ms, expected ${full / 2}–${full}ms (jittered)`);
      });
      assert.equal(informer.hasSynced(), false);
      const abort = new AbortController();
      const syncing = informer.waitForSync(abort.signal);
      assert.equal(await Promise.race([syncing, Promise.resolve("pending")]), "pending", "waitForSync waits while the lists fail");
      abort.abort();
      assert.equal(await syncing, false);
    } finally {
      await informer.stop();
    }
    assert.equal(clock.pending, 0, "stop ends the backoff pause");
  });
});

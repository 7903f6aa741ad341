// Inventory, prune and teardown against a real API server.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { API_VERSION, STAGEINVENTORY_KIND, type KubeObject, type StageInventory } from "../../src/api/types.js";
import { stageInventoryCrd } from "../../src/api/crds.js";
import { isEstablished } from "../../src/apply/crds.js";
import { listInventories, stageApplySetId } from "../../src/apply/inventory.js";
import { describeObject } from "../../src/apply/objects.js";
import type { ApplyClient } from "../../src/apply/ports.js";
import { teardown } from "../../src/apply/prune.js";
import { applyStage } from "../../src/apply/engine.js";
import { syncStage } from "../../src/apply/stage.js";
import { KubeClient } from "../../src/kube/client.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";
import { waitFor } from "../support/wait.js";

let client: KubeClient;
let cluster: Awaited<ReturnType<typeof testCluster>>;

before(async () => {
  cluster = await testCluster();
  client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  const crd = stageInventoryCrd() as unknown as KubeObject;
  await client.apply(crd, { fieldManager: "stageset-tests", force: true });
  await waitFor(async () => isEstablished(await client.get({ apiVersion: crd.apiVersion, kind: crd.kind, name: crd.metadata.name! })), {
    description: "the StageInventory CRD Established",
    timeoutMs: 30_000,
  });
});

const cm = (name: string, labels?: Record<string, string>): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: labels ? { name, labels } : { name },
  data: { name },
});

/** The real client as an ApplyClient, with `overrides` in place of some of its calls. */
function throughClient(overrides: Partial<ApplyClient>): ApplyClient {
  return {
    resourceFor: (apiVersion, kind) => client.resourceFor(apiVersion, kind),
    servedVersions: (group, kind) => client.servedVersions(group, kind),
    get: (ref) => client.get(ref),
    list: (apiVersion, kind, options) => client.list(apiVersion, kind, options),
    listAll: (apiVersion, kind, options) => client.listAll(apiVersion, kind, options),
    apply: (obj, options) => client.apply(obj, options),
    patch: (ref, body, type, options) => client.patch(ref, body, type, options),
    delete: (ref, options) => client.delete(ref, options),
    ...overrides,
  };
}

async function configMapNames(ns: string): Promise<string[]> {
  const { items } = await client.listAll("v1", "ConfigMap", { namespace: ns, labelSelector: "stages.metio.wtf/name" });
  return items.map((i) => i.metadata.name!).sort();
}

describe("syncStage", () => {
  test("prunes objects that left the stage, but not prune-disabled ones or ones another StageSet holds", async () => {
    const ns = await createTestNamespace(cluster, "apply-prune");
    const stageSet = { name: "shop", namespace: ns };
    const base = { client, stageSet, position: 0, mode: "entries" as const, shardCap: 2 };
    const stage = { name: "app" };

    const first = await syncStage({
      ...base,
      stage,
      objects: [cm("keep"), cm("gone"), cm("pinned", { "stages.metio.wtf/prune": "disabled" }), cm("moved")],
    });
    assert.equal(first.entries.length, 4);
    assert.equal(first.shards, 2);
    const recorded = await listInventories(client, stageSet);
    assert.deepEqual([...recorded.keys()], ["app"]);
    assert.deepEqual(recorded.get("app")!.shards.map((s) => s.metadata.name), ["shop-app-0", "shop-app-1"]);

    // Another StageSet takes over "moved".
    await syncStage({ ...base, stageSet: { name: "other", namespace: ns }, stage, objects: [cm("moved")] });

    const second = await syncStage({ ...base, stage, objects: [cm("keep")] });
    assert.deepEqual(second.prune.pruned.map((r) => r.name), ["gone"]);
    assert.deepEqual(
      second.prune.kept.map((k) => [k.ref.name, k.reason]).sort(),
      [["moved", "held-elsewhere"], ["pinned", "prune-disabled-label"]],
    );
    assert.deepEqual(await configMapNames(ns), ["keep", "moved", "pinned"]);
    const after = await listInventories(client, stageSet);
    assert.deepEqual(after.get("app")!.entries, [{ id: `${ns}_keep__ConfigMap`, v: "v1" }]);
    assert.equal(after.get("app")!.shards.length, 1, "the surplus shard was deleted");

    const writesBefore = client.writeCount();
    const third = await syncStage({ ...base, stage, objects: [cm("keep")] });
    assert.equal(client.writeCount() - writesBefore, 0, "a no-op sync writes neither objects nor inventory");
    assert.equal(third.inventoryWrites, 0);
  });

  test("keeps everything with prune: false", async () => {
    const ns = await createTestNamespace(cluster, "apply-noprune");
    const base = { client, stageSet: { name: "shop", namespace: ns }, position: 0, mode: "entries" as const, shardCap: 100 };
    await syncStage({ ...base, stage: { name: "app", prune: false }, objects: [cm("a"), cm("b")] });
    const second = await syncStage({ ...base, stage: { name: "app", prune: false }, objects: [cm("a")] });
    assert.deepEqual(second.prune.kept.map((k) => [k.ref.name, k.reason]), [["b", "prune-false"]]);
    assert.deepEqual(await configMapNames(ns), ["a", "b"]);
  });

  for (const mode of ["hybrid", "applyset"] as const) {
    test(`${mode} mode: members carry the ApplySet label, shard 0 is the parent, prune finds leavers`, async () => {
      const ns = await createTestNamespace(cluster, `apply-${mode}`);
      const stageSet = { name: "shop", namespace: ns };
      const base = { client, stageSet, position: 0, mode, shardCap: 100, stage: { name: "app" } };
      await syncStage({ ...base, objects: [cm("a"), cm("b")] });
      const id = stageApplySetId(stageSet, "app");
      const member = await client.get({ apiVersion: "v1", kind: "ConfigMap", name: "a", namespace: ns });
      assert.equal(member?.metadata.labels?.["applyset.kubernetes.io/part-of"], id);
      const parent = (await client.get({ apiVersion: API_VERSION, kind: STAGEINVENTORY_KIND, name: "shop-app-0", namespace: ns })) as StageInventory;
      assert.equal(parent.metadata.labels?.["applyset.kubernetes.io/id"], id);
      assert.equal(parent.metadata.annotations?.["applyset.kubernetes.io/contains-group-kinds"], "ConfigMap");
      assert.equal(parent.metadata.annotations?.["applyset.kubernetes.io/tooling"], "stageset-controller/v1");
      assert.equal(parent.spec.entries.length, mode === "applyset" ? 0 : 2);

      const second = await syncStage({ ...base, objects: [cm("a")] });
      assert.deepEqual(second.prune.pruned.map((r) => r.name), ["b"]);
      assert.deepEqual(await configMapNames(ns), ["a"]);
      const writesBefore = client.writeCount();
      await syncStage({ ...base, objects: [cm("a")] });
      assert.equal(client.writeCount() - writesBefore, 0);
    });
  }
});

describe("the inventory is recorded before the first object is sent", () => {
  test("an apply cut short by a refused object still lists what it applied, and the next run prunes it", async () => {
    const ns = await createTestNamespace(cluster, "apply-cutshort");
    const stageSet = { name: "shop", namespace: ns };
    const base = { client, stageSet, position: 0, mode: "entries" as const, shardCap: 100, stage: { name: "app" } };
    // The API server refuses a ConfigMap key with a space in it (422).
    const refused: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "refused" }, data: { "not a key": "x" } };
    await assert.rejects(syncStage({ ...base, objects: [cm("a"), cm("b"), refused] }), /refused/);
    assert.deepEqual(await configMapNames(ns), ["a", "b"], "the objects before the refused one were applied");
    const recorded = await listInventories(client, stageSet);
    assert.deepEqual(
      recorded.get("app")!.entries.map((e) => e.id),
      [`${ns}_a__ConfigMap`, `${ns}_b__ConfigMap`, `${ns}_refused__ConfigMap`],
      "every object the apply was about to send is recorded",
    );

    // The next revision drops b (and the refused one): b is pruned although the run that applied it failed.
    const next = await syncStage({ ...base, objects: [cm("a")] });
    assert.deepEqual(next.prune.pruned.map((r) => r.name), ["b"]);
    assert.deepEqual(await configMapNames(ns), ["a"]);
    assert.deepEqual((await listInventories(client, stageSet)).get("app")!.entries.map((e) => e.id), [`${ns}_a__ConfigMap`]);
  });

  test("when the inventory cannot be written, nothing is applied", async () => {
    const ns = await createTestNamespace(cluster, "apply-noinventory");
    // The real client, with every StageInventory write refused.
    const refusing = throughClient({
      apply: async (obj, options) => {
        if (obj.kind === STAGEINVENTORY_KIND) throw new Error("stageinventories is forbidden (injected)");
        return client.apply(obj, options);
      },
    });
    await assert.rejects(
      syncStage({ client, inventoryClient: refusing, stageSet: { name: "shop", namespace: ns }, position: 0, mode: "hybrid", shardCap: 100, stage: { name: "app" }, objects: [cm("a"), cm("b")] }),
      (err: Error) => /recording the StageInventory failed/.test(err.message) && /forbidden/.test(err.message),
    );
    assert.deepEqual(await configMapNames(ns), []);
  });
});

/** Runs `body` in a new namespace with a client of its own, whose request counts are the body's alone. */
async function withCountedClient(prefix: string, body: (counted: KubeClient, ns: string) => Promise<void>): Promise<void> {
  const ns = await createTestNamespace(cluster, prefix);
  const counted = KubeClient.fromKubeConfig(cluster.kubeConfig);
  try {
    await body(counted, ns);
  } finally {
    counted.close();
  }
}

describe("reads by the stage's labels", () => {
  test("a first apply lists nothing by the stage's labels; the next one lists them and changes nothing; leftovers with the labels are still applied", () =>
    withCountedClient("apply-reads", async (counted, ns) => {
      const stageSet = { name: "shop", namespace: ns };
      const base = { client: counted, stageSet, position: 0, mode: "entries" as const, shardCap: 10, stage: { name: "app" } };
      // A leftover of an earlier StageSet of the same name: the stage's labels, no inventory entry.
      const leftover = cm("leftover", { "stages.metio.wtf/name": "shop", "stages.metio.wtf/stage": "app" });
      await client.apply({ ...leftover, metadata: { ...leftover.metadata, namespace: ns }, data: { name: "old" } }, { fieldManager: "someone", force: true });
      const objects = [cm("a"), cm("b"), cm("c"), { ...cm("leftover"), data: { name: "new" } }];

      counted.resetStats();
      const first = await syncStage({ ...base, objects });
      // One list: the stage's inventory. None of its ConfigMaps by label: there is no earlier apply to compare with.
      assert.equal(counted.stats().list, 1, JSON.stringify(counted.stats()));
      assert.deepEqual(first.apply.entries.map((e) => e.action).sort(), ["configured", "created", "created", "created"]);
      const live = await client.get<KubeObject & { data?: Record<string, string> }>({ apiVersion: "v1", kind: "ConfigMap", namespace: ns, name: "leftover" });
      assert.equal(live?.data?.["name"], "new");

      counted.resetStats();
      const second = await syncStage({ ...base, objects });
      assert.equal(counted.stats().list, 2, `the inventory and the stage's ConfigMaps by label: ${JSON.stringify(counted.stats())}`);
      assert.equal(counted.stats().apply, 0, JSON.stringify(counted.stats()));
      assert.deepEqual(second.apply.entries.map((e) => e.action), ["unchanged", "unchanged", "unchanged", "unchanged"]);
      assert.equal(second.apply.observed.size, 4, "the listed objects are what the stage observed");
    }));

  test("an inventory id that does not parse lists by label rather than miss what the stage applied", () =>
    withCountedClient("apply-badid", async (counted, ns) => {
      const stageSet = { name: "shop", namespace: ns };
      await applyStage({ client: counted, stageSet, stage: "app", objects: [cm("a")] });
      counted.resetStats();
      const again = await applyStage({ client: counted, stageSet, stage: "app", objects: [cm("a")], previousIds: new Set(["not-an-inventory-id"]) });
      assert.equal(counted.stats().list, 1, JSON.stringify(counted.stats()));
      assert.deepEqual(again.entries.map((e) => e.action), ["unchanged"]);
    }));
});

describe("teardown", () => {
  test("deletes stages in reverse order, waits for each, honours prune: false, removes the inventories", async () => {
    const ns = await createTestNamespace(cluster, "apply-teardown");
    const stageSet = { name: "shop", namespace: ns };
    const base = { client, stageSet, mode: "hybrid" as const, shardCap: 100 };
    await syncStage({ ...base, position: 0, stage: { name: "infra" }, objects: [cm("infra-1"), cm("infra-2")] });
    await syncStage({ ...base, position: 1, stage: { name: "app" }, objects: [cm("app-1"), cm("app-2"), cm("app-pinned", { "stages.metio.wtf/prune": "disabled" })] });
    await syncStage({ ...base, position: 2, stage: { name: "data", prune: false }, objects: [cm("data-1")] });

    const deletions: string[] = [];
    const recording = throughClient({
      delete: (ref, options) => {
        deletions.push(describeObject(ref));
        return client.delete(ref, options);
      },
    });
    const result = await teardown({
      client: recording,
      stageSet,
      pruneByStage: new Map([["infra", true], ["app", true], ["data", false]]),
      timeoutMs: 30_000,
    });
    assert.deepEqual(result.stages, ["data", "app", "infra"]);
    const objectDeletions = deletions.filter((d) => d.startsWith("ConfigMap"));
    assert.deepEqual([...objectDeletions].sort(), [`ConfigMap ${ns}/app-1`, `ConfigMap ${ns}/app-2`, `ConfigMap ${ns}/infra-1`, `ConfigMap ${ns}/infra-2`]);
    const lastApp = Math.max(...["app-1", "app-2"].map((n) => objectDeletions.indexOf(`ConfigMap ${ns}/${n}`)));
    const firstInfra = Math.min(...["infra-1", "infra-2"].map((n) => objectDeletions.indexOf(`ConfigMap ${ns}/${n}`)));
    assert.ok(lastApp < firstInfra, `stage app is torn down before stage infra: ${objectDeletions.join(", ")}`);
    assert.deepEqual(await configMapNames(ns), ["app-pinned", "data-1"]);
    assert.equal((await listInventories(client, stageSet)).size, 0);
  });
});

// Issue 7 point 3: prune never loses an object. An entry recorded with a
// version its CRD no longer serves is read and deleted through a served one;
// only an entry whose kind is not served at all is dropped, and reported.
// Against a real API server (../shared/cases/apply-correctness/unserved-version-prune).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { stageInventoryCrd } from "../../src/api/crds.js";
import { isEstablished } from "../../src/apply/crds.js";
import { listInventories } from "../../src/apply/inventory.js";
import { syncStage } from "../../src/apply/stage.js";
import { teardown } from "../../src/apply/prune.js";
import { KubeClient } from "../../src/kube/client.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { waitFor } from "../support/wait.js";

let cluster: TestCluster;
let client: KubeClient;
const crdNames: string[] = [];

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

after(async () => {
  for (const name of crdNames) {
    await client.delete({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name });
  }
  client.close();
});

const anySchema = { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } };

/** The case's Gadget CRD: r1 serves v1alpha1 and v1 (storage), r2 stops serving v1alpha1. */
function gadgetCrd(group: string, revision: "r1" | "r2"): KubeObject {
  const name = `gadgets.${group}`;
  if (!crdNames.includes(name)) crdNames.push(name);
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name },
    spec: {
      group,
      scope: "Namespaced",
      names: { plural: "gadgets", singular: "gadget", kind: "Gadget", listKind: "GadgetList" },
      versions: [
        { name: "v1alpha1", served: revision === "r1", storage: false, schema: anySchema },
        { name: "v1", served: true, storage: true, schema: anySchema },
      ],
    },
  };
}

const gadget = (group: string, version: string, name: string): KubeObject => ({
  apiVersion: `${group}/${version}`,
  kind: "Gadget",
  metadata: { name },
  spec: { color: name },
});

/** Applies a stage of the CRD and waits, as the stage's verify would, until it is Established and discovery serves `versions`. */
async function installCrds(options: Parameters<typeof syncStage>[0], crd: KubeObject, versions: string[]): Promise<void> {
  await syncStage({ ...options, objects: [crd] });
  const group = (crd.spec as { group: string }).group;
  await waitFor(
    async () => {
      if (!isEstablished(await client.get({ apiVersion: crd.apiVersion, kind: crd.kind, name: crd.metadata.name! }))) return false;
      for (const v of versions) await client.resourceFor(`${group}/${v}`, "Gadget");
      return true;
    },
    { description: `${crd.metadata.name} Established and served`, timeoutMs: 60_000 },
  );
}

const cm = (name: string): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { name } });

describe("prune of entries whose recorded version is no longer served", () => {
  test("an object applied as v1alpha1 and dropped from the stage after its CRD stopped serving v1alpha1 is deleted through v1", async () => {
    const ns = await createTestNamespace(cluster, "prune-unserved");
    const group = `t${randomBytes(4).toString("hex")}.gadgets.test`;
    const stageSet = { name: "gadgets", namespace: ns };
    const base = { client, stageSet, mode: "entries" as const, shardCap: 100 };
    const crds = { ...base, position: 0, stage: { name: "crds" } };
    const app = { ...base, position: 1, stage: { name: "app" } };

    // r1
    await installCrds({ ...crds, objects: [] }, gadgetCrd(group, "r1"), ["v1alpha1", "v1"]);
    await syncStage({ ...app, objects: [gadget(group, "v1alpha1", "g-old"), gadget(group, "v1", "g-new")] });
    const recorded = (await listInventories(client, stageSet)).get("app")!.entries;
    assert.deepEqual(recorded.find((e) => e.id.includes("g-old"))?.v, `${group}/v1alpha1`);

    // r2: the CRD stops serving v1alpha1, and g-old leaves the stage.
    await syncStage({ ...crds, objects: [gadgetCrd(group, "r2")] });
    const second = await syncStage({ ...app, objects: [gadget(group, "v1", "g-new")] });
    assert.deepEqual(second.prune.pruned, [{ apiVersion: `${group}/v1`, kind: "Gadget", name: "g-old", namespace: ns }]);
    assert.deepEqual(second.prune.dropped, []);
    await waitFor(async () => (await client.get({ apiVersion: `${group}/v1`, kind: "Gadget", name: "g-old", namespace: ns })) === undefined, {
      description: "g-old deleted",
      timeoutMs: 30_000,
    });
    assert.ok(await client.get({ apiVersion: `${group}/v1`, kind: "Gadget", name: "g-new", namespace: ns }), "g-new stays");
    assert.deepEqual((await listInventories(client, stageSet)).get("app")!.entries.map((e) => e.v), [`${group}/v1`]);
  });

  test("an entry whose kind is not served in any version is dropped and reported, never silently", async () => {
    const ns = await createTestNamespace(cluster, "prune-kind-gone");
    const group = `t${randomBytes(4).toString("hex")}.gadgets.test`;
    const stageSet = { name: "gadgets", namespace: ns };
    const base = { client, stageSet, mode: "entries" as const, shardCap: 100, position: 0, stage: { name: "app" } };
    const crd = gadgetCrd(group, "r2");
    await installCrds({ ...base, stage: { name: "crds" }, objects: [] }, crd, ["v1"]);
    await syncStage({ ...base, position: 1, objects: [cm("settings"), gadget(group, "v1", "g-1"), gadget(group, "v1", "g-2")] });

    // The CRD goes (deleted by someone else); the stage no longer renders the gadgets.
    const other = KubeClient.fromKubeConfig(cluster.kubeConfig);
    try {
      await other.delete({ apiVersion: crd.apiVersion, kind: crd.kind, name: crd.metadata.name! });
      await waitFor(async () => (await other.get({ apiVersion: crd.apiVersion, kind: crd.kind, name: crd.metadata.name! })) === undefined, {
        description: "the Gadget CRD gone",
        timeoutMs: 60_000,
      });
    } finally {
      other.close();
    }
    const second = await syncStage({ ...base, position: 1, objects: [cm("settings")] });
    assert.deepEqual(second.prune.pruned, []);
    assert.deepEqual(
      second.prune.dropped.map((d) => [d.ref.name, d.ref.apiVersion, d.reason]).sort(),
      [["g-1", `${group}/v1`, "kind-not-served"], ["g-2", `${group}/v1`, "kind-not-served"]],
    );
    for (const d of second.prune.dropped) {
      assert.match(d.message, new RegExp(`Gadget\\.${group.replace(/\./g, "\\.")} ${ns}/${d.ref.name}.*no version of kind Gadget`));
    }
    assert.deepEqual((await listInventories(client, stageSet)).get("app")!.entries.map((e) => e.id), [`${ns}_settings__ConfigMap`]);
  });

  test("teardown reports entries whose kind is not served in any version", async () => {
    const ns = await createTestNamespace(cluster, "teardown-kind-gone");
    const group = `t${randomBytes(4).toString("hex")}.gadgets.test`;
    const stageSet = { name: "gadgets", namespace: ns };
    const crd = gadgetCrd(group, "r2");
    const base = { client, stageSet, mode: "hybrid" as const, shardCap: 100 };
    await installCrds({ ...base, position: 0, stage: { name: "crds" }, objects: [] }, crd, ["v1"]);
    await syncStage({ ...base, position: 1, stage: { name: "app" }, objects: [gadget(group, "v1", "g-1")] });
    await client.delete({ apiVersion: crd.apiVersion, kind: crd.kind, name: crd.metadata.name! });
    await waitFor(async () => (await client.get({ apiVersion: crd.apiVersion, kind: crd.kind, name: crd.metadata.name! })) === undefined, {
      description: "the Gadget CRD gone",
      timeoutMs: 60_000,
    });
    const result = await teardown({ client, stageSet, onlyStages: new Set(["app"]), timeoutMs: 30_000 });
    assert.deepEqual(result.dropped.map((d) => [d.ref.name, d.reason]), [["g-1", "kind-not-served"]]);
    assert.equal((await listInventories(client, stageSet)).has("app"), false);
  });
});

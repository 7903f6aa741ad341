// Issue 7 point 9: what one long-lived client knows about served kinds follows
// CustomResourceDefinition changes (deleted, re-created) made by itself or by
// someone else, against a real API server.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { isEstablished } from "../../src/apply/crds.js";
import { applyStage } from "../../src/apply/engine.js";
import { KIND_NOT_SERVED_REQUEUE_MS, UnknownKindError } from "../../src/apply/errors.js";
import { KubeClient } from "../../src/kube/client.js";
import { KindNotFoundError } from "../../src/kube/errors.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { waitFor } from "../support/wait.js";
import { widgetCrd } from "../support/widgets.js";

let cluster: TestCluster;
/** The long-lived client, as in a running controller. */
let client: KubeClient;
/** Someone else (kubectl, another controller): its writes do not pass through `client`. */
let other: KubeClient;
const groups: string[] = [];

before(async () => {
  cluster = await testCluster();
  client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  other = KubeClient.fromKubeConfig(cluster.kubeConfig);
});

after(async () => {
  for (const group of groups) {
    await other.delete({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name: `widgets.${group}` });
  }
  client.close();
  other.close();
});

function newGroup(): string {
  const group = `t${randomBytes(4).toString("hex")}.stale.test`;
  groups.push(group);
  return group;
}

const crdRef = (group: string) => ({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name: `widgets.${group}` });

const widget = (group: string, name: string): KubeObject => ({
  apiVersion: `${group}/v1`,
  kind: "Widget",
  metadata: { name },
  spec: { size: 1 },
});

async function deleteCrd(by: KubeClient, group: string): Promise<void> {
  await by.delete(crdRef(group));
  await waitFor(async () => (await other.get(crdRef(group))) === undefined, {
    description: `CRD widgets.${group} gone`,
    timeoutMs: 60_000,
  });
}

/** Installs the Widget CRD (cluster-scoped with `cluster`) and waits, as a stage's verify would, until it is Established and discovery lists it. */
async function installCrd(by: KubeClient, group: string, options: { cluster?: boolean } = {}): Promise<void> {
  const crd = widgetCrd(group);
  if (options.cluster) (crd.spec as { scope: string }).scope = "Cluster";
  await by.apply(crd, { fieldManager: "stageset-tests", force: true });
  await waitFor(async () => isEstablished(await other.get(crdRef(group))), {
    description: `CRD widgets.${group} Established`,
    timeoutMs: 60_000,
  });
  const fresh = KubeClient.fromKubeConfig(cluster.kubeConfig);
  try {
    await waitFor(async () => (await fresh.resourceFor(`${group}/v1`, "Widget")).namespaced === !options.cluster, {
      description: `discovery to serve Widget in ${group}/v1`,
      timeoutMs: 60_000,
    });
  } finally {
    fresh.close();
  }
}

describe("discovery follows CRD changes", () => {
  test("a CRD the controller deleted and re-applies in the same stage as its custom resources: they wait for it to be Established (no 404)", async () => {
    const ns = await createTestNamespace(cluster, "stale-same-stage");
    const group = newGroup();
    const stageSet = { name: "prom", namespace: ns };
    const objects = [widgetCrd(group), widget(group, "rule-a")];
    await applyStage({ client, stageSet, stage: "monitoring", objects });
    assert.ok(await client.get({ apiVersion: `${group}/v1`, kind: "Widget", name: "rule-a", namespace: ns }));

    // Teardown: the controller's own client deletes the CRD (and with it the custom resources).
    await deleteCrd(client, group);

    // Rolled out again by the same process: the CRD comes back, the custom
    // resources wait for it instead of failing with "404 page not found".
    await applyStage({ client, stageSet, stage: "monitoring", objects });
    const live = await client.get({ apiVersion: `${group}/v1`, kind: "Widget", name: "rule-a", namespace: ns });
    assert.equal(live?.metadata.name, "rule-a");
  });

  test("a CRD deleted by someone else: requests for its kind say the kind is not served, a stage of its custom resources is a short requeue naming the CRD, and it applies once the CRD is back", async () => {
    const ns = await createTestNamespace(cluster, "stale-external");
    const group = newGroup();
    const stageSet = { name: "prom", namespace: ns };
    const apiVersion = `${group}/v1`;
    await installCrd(other, group);
    await applyStage({ client, stageSet, stage: "rules", objects: [widget(group, "rule-a")] });

    await deleteCrd(other, group);

    // The client had the kind cached: a request finds no route, re-discovers
    // at once and reports the kind as not served (not "404 page not found",
    // and a get does not pretend the object is merely missing).
    const ref = { apiVersion, kind: "Widget", name: "rule-a", namespace: ns };
    await assert.rejects(client.listAll(apiVersion, "Widget", { namespace: ns }), KindNotFoundError);
    await assert.rejects(client.get(ref), KindNotFoundError);

    // A stage holding only the custom resource: "kind not served", short requeue, the missing CRD named.
    await assert.rejects(applyStage({ client, stageSet, stage: "rules", objects: [widget(group, "rule-a")] }), (err: unknown) => {
      assert.ok(err instanceof UnknownKindError, `expected UnknownKindError, got ${String(err)}`);
      assert.equal(err.requeueAfterMs, KIND_NOT_SERVED_REQUEUE_MS);
      assert.equal(err.missingCrd, `widgets.${group}`);
      assert.match(err.message, new RegExp(`widgets\\.${group.replace(/\./g, "\\.")}`));
      assert.doesNotMatch(err.message, /page not found/);
      return true;
    });

    // Re-created by someone else: the next apply finds the kind at once.
    await installCrd(other, group);
    await applyStage({ client, stageSet, stage: "rules", objects: [widget(group, "rule-a")] });
    assert.equal((await client.get(ref))?.metadata.name, "rule-a");
  });

  test("a CRD re-created by someone else with another scope while the kind was cached: requests re-discover and succeed", async () => {
    const ns = await createTestNamespace(cluster, "stale-recreated");
    const group = newGroup();
    const apiVersion = `${group}/v1`;
    await installCrd(other, group);
    const a = { ...widget(group, "a"), metadata: { name: "a", namespace: ns } };
    await client.apply(a, { fieldManager: "stageset-tests" });

    await deleteCrd(other, group);
    // Re-created cluster-scoped: the cached (namespaced) URLs lead nowhere now.
    await installCrd(other, group, { cluster: true });

    assert.equal(await client.get({ apiVersion, kind: "Widget", name: "a", namespace: ns }), undefined);
    await client.apply(widget(group, "b"), { fieldManager: "stageset-tests" });
    assert.deepEqual((await client.listAll(apiVersion, "Widget")).items.map((w) => w.metadata.name), ["b"]);
    assert.equal((await client.resourceFor(apiVersion, "Widget")).namespaced, false);
  });
});

// The apply engine against a real API server: first apply, the zero-write
// no-op, drift correction, CRDs with their custom resources, and the
// conflict policies on immutable fields.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { before, describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { AppliedStateMemo } from "../../src/apply/drift.js";
import { applyStage, type ApplyResult, type ChangeAction } from "../../src/apply/engine.js";
import { ConflictPolicyError, UnknownKindError } from "../../src/apply/errors.js";
import { KubeClient } from "../../src/kube/client.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";
import { widgetCrd } from "../support/widgets.js";

let client: KubeClient;
let cluster: Awaited<ReturnType<typeof testCluster>>;

before(async () => {
  cluster = await testCluster();
  client = KubeClient.fromKubeConfig(cluster.kubeConfig);
});

function outcomes(cs: ApplyResult): Record<ChangeAction, number> {
  const counts: Record<ChangeAction, number> = { created: 0, configured: 0, unchanged: 0, recreated: 0, skipped: 0, deleted: 0, kept: 0 };
  for (const e of cs.entries) counts[e.action]++;
  return counts;
}

function writes(): number {
  return client.writeCount();
}

function configMap(name: string, data: Record<string, string>, extra: Partial<KubeObject> = {}): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data, ...extra };
}

function service(name: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name },
    spec: { selector: { app: name }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
  };
}

function deployment(name: string): KubeObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, labels: { app: name } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name }, creationTimestamp: null },
        spec: {
          containers: [
            {
              name: "web",
              image: "registry.example/web:1.0",
              ports: [{ containerPort: 8080 }],
              resources: { requests: { cpu: "0.1", memory: "64Mi" }, limits: { cpu: 1, memory: "128Mi" } },
            },
          ],
        },
      },
    },
  };
}

/** A realistic stage mix: a third each of ConfigMaps, Services and Deployments. */
function mixedStage(count: number): KubeObject[] {
  const objects: KubeObject[] = [];
  for (let i = 0; objects.length < count; i++) {
    objects.push(configMap(`cfg-${i}`, { index: String(i), "app.properties": `mode=prod\nreplica=${i}\n` }));
    if (objects.length < count) objects.push(service(`svc-${i}`));
    if (objects.length < count) objects.push(deployment(`web-${i}`));
  }
  return objects;
}

describe("applyStage", () => {
  test("applies a stage of 200 objects, then makes no write on the identical second run, then corrects drift", async () => {
    const ns = await createTestNamespace(cluster, "apply-noop");
    const stageSet = { name: "shop", namespace: ns };
    const objects = mixedStage(200);
    const memo = new AppliedStateMemo();

    const first = await applyStage({ client, stageSet, stage: "app", objects, memo });
    assert.equal(first.entries.length, 200);
    assert.equal(outcomes(first).created, 200);
    assert.equal(first.driftCorrected, 0);

    const before = client.stats();
    const writesBefore = writes();
    const second = await applyStage({ client, stageSet, stage: "app", objects, memo });
    const after = client.stats();
    assert.equal(outcomes(second).unchanged, 200, JSON.stringify(second.entries.filter((e) => e.action !== "unchanged")));
    assert.equal(writes() - writesBefore, 0, "a no-op run makes no write request");
    assert.equal(after.get - before.get, 0, "a no-op run needs no per-object get");
    assert.equal(after.list - before.list, 3, "one labelled list per kind and namespace");

    // Someone edits a managed field by hand.
    await client.patch({ apiVersion: "v1", kind: "ConfigMap", name: "cfg-7", namespace: ns }, { data: { index: "hand-edited" } }, "merge", {
      fieldManager: "kubectl-edit",
    });
    const third = await applyStage({ client, stageSet, stage: "app", objects, memo });
    assert.equal(third.driftCorrected, 1);
    assert.deepEqual(
      third.entries.filter((e) => e.action !== "unchanged").map((e) => [e.id, e.action]),
      [[`${ns}_cfg-7__ConfigMap`, "configured"]],
    );
    const restored = await client.get({ apiVersion: "v1", kind: "ConfigMap", name: "cfg-7", namespace: ns });
    assert.equal((restored?.data as Record<string, string>).index, "7");
    assert.equal(restored?.metadata.labels?.["stages.metio.wtf/stage"], "app");
    assert.equal(restored?.metadata.labels?.["stages.metio.wtf/name"], "shop");
    assert.equal(restored?.metadata.labels?.["stages.metio.wtf/namespace"], ns);
  });

  test("adopts an existing unlabelled object and reports it configured", async () => {
    const ns = await createTestNamespace(cluster, "apply-adopt");
    await client.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "pre-existing", namespace: ns }, data: { a: "1" } });
    const cs = await applyStage({ client, stageSet: { name: "shop", namespace: ns }, stage: "app", objects: [configMap("pre-existing", { a: "2" })] });
    assert.equal(cs.entries[0]?.action, "configured");
    assert.equal(cs.driftCorrected, 0, "an object that was not ours is adopted, not drift-corrected");
  });

  test("applies a CRD and its custom resources in one stage", async () => {
    const ns = await createTestNamespace(cluster, "apply-crd");
    const group = `t${randomBytes(4).toString("hex")}.example.com`;
    const crd = widgetCrd(group, {
      schema: { type: "object", properties: { spec: { type: "object", properties: { size: { type: "integer" } } } } },
    });
    const widgets = [1, 2, 3].map((i): KubeObject => ({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: `w${i}` }, spec: { size: i } }));
    try {
      const cs = await applyStage({ client, stageSet: { name: "shop", namespace: ns }, stage: "infra", objects: [...widgets, crd] });
      assert.deepEqual(
        cs.entries.map((e) => [e.ref.kind, e.action]),
        [["CustomResourceDefinition", "created"], ["Widget", "created"], ["Widget", "created"], ["Widget", "created"]],
      );
      const w2 = await client.get({ apiVersion: `${group}/v1`, kind: "Widget", name: "w2", namespace: ns });
      assert.equal((w2?.spec as { size: number }).size, 2);

      const writesBefore = writes();
      const again = await applyStage({ client, stageSet: { name: "shop", namespace: ns }, stage: "infra", objects: [...widgets, crd] });
      assert.equal(outcomes(again).unchanged, 4);
      assert.equal(writes() - writesBefore, 0, "the CRD the server defaulted is not re-applied");
    } finally {
      await client.delete({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name: `widgets.${group}` });
    }
  });

  test("fails on a kind the API server does not serve with no CRD in the stage", async () => {
    const ns = await createTestNamespace(cluster, "apply-unknown");
    await assert.rejects(
      applyStage({
        client,
        stageSet: { name: "shop", namespace: ns },
        stage: "app",
        objects: [configMap("ok", {}), { apiVersion: "nothing.example.com/v1", kind: "Gadget", metadata: { name: "g" } }],
      }),
      (err: Error) =>
        err instanceof UnknownKindError &&
        /stage "app"/.test(err.message) &&
        /Gadget\.nothing\.example\.com g/.test(err.message) &&
        /no matching CRD installed/.test(err.message),
    );
  });
});

describe("conflict policies", () => {
  const immutable = (data: Record<string, string>) => configMap("frozen", data, { immutable: true });

  test("Fail (the default) names the object and the fix; KeepExisting skips; a Recreate rule recreates", async () => {
    const ns = await createTestNamespace(cluster, "apply-conflict");
    const stageSet = { name: "shop", namespace: ns };
    await applyStage({ client, stageSet, stage: "app", objects: [immutable({ v: "1" })] });
    const original = await client.get({ apiVersion: "v1", kind: "ConfigMap", name: "frozen", namespace: ns });

    await assert.rejects(applyStage({ client, stageSet, stage: "app", objects: [immutable({ v: "2" })] }), (err: Error) => {
      assert.ok(err instanceof ConflictPolicyError);
      assert.match(err.message, new RegExp(`stage "app": ConfigMap ${ns}/frozen cannot be changed in place`));
      assert.match(err.message, /immutable/);
      assert.match(err.message, /add a conflictPolicy rule with action Recreate/);
      return true;
    });

    const kept = await applyStage({
      client,
      stageSet,
      stage: "app",
      objects: [immutable({ v: "2" })],
      conflictPolicy: { default: "Fail", rules: [{ target: { kind: "ConfigMap", name: "frozen" }, action: "KeepExisting" }] },
    });
    assert.equal(kept.entries[0]?.action, "skipped");
    const unchanged = await client.get({ apiVersion: "v1", kind: "ConfigMap", name: "frozen", namespace: ns });
    assert.deepEqual(unchanged?.data, { v: "1" });

    const recreated = await applyStage({
      client,
      stageSet,
      stage: "app",
      objects: [immutable({ v: "2" })],
      conflictPolicy: {
        rules: [
          { target: { kind: "ConfigMap", name: "other" }, action: "KeepExisting" },
          { target: { apiVersion: "v1", kind: "ConfigMap" }, action: "Recreate" },
        ],
      },
    });
    assert.equal(recreated.entries[0]?.action, "recreated");
    const live = await client.get({ apiVersion: "v1", kind: "ConfigMap", name: "frozen", namespace: ns });
    assert.deepEqual(live?.data, { v: "2" });
    assert.notEqual(live?.metadata.uid, original?.metadata.uid);
  });

  test("force: true recreates a Job whose pod template changed", async () => {
    const ns = await createTestNamespace(cluster, "apply-force");
    const stageSet = { name: "shop", namespace: ns };
    const job = (image: string): KubeObject => ({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "migrate" },
      spec: {
        template: { spec: { restartPolicy: "Never", containers: [{ name: "m", image, env: [{ name: "DB_PASSWORD", value: "s3cr3t-value" }] }] } },
      },
    });
    await applyStage({ client, stageSet, stage: "app", objects: [job("migrate:1")] });
    await assert.rejects(applyStage({ client, stageSet, stage: "app", objects: [job("migrate:2")] }), (err: Error) => {
      assert.match(err.message, new RegExp(`Job ${ns}/migrate cannot be changed in place: spec.template: field is immutable`));
      assert.doesNotMatch(err.message, /s3cr3t-value/, "the refused value (which may hold secrets) is not echoed");
      return true;
    });
    const cs = await applyStage({ client, stageSet, stage: "app", objects: [job("migrate:2")], force: true });
    assert.equal(cs.entries[0]?.action, "recreated");
    const live = await client.get({ apiVersion: "batch/v1", kind: "Job", name: "migrate", namespace: ns });
    const spec = live?.spec as { template: { spec: { containers: { image: string }[] } } };
    assert.equal(spec.template.spec.containers[0]?.image, "migrate:2");
  });

  test("Recreate of a PersistentVolumeClaim is refused without allowDataLoss", async () => {
    const ns = await createTestNamespace(cluster, "apply-pvc");
    const stageSet = { name: "shop", namespace: ns };
    const pvc = (mode: string): KubeObject => ({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: "data" },
      spec: { accessModes: [mode], resources: { requests: { storage: "1Gi" } }, storageClassName: "none" },
    });
    await applyStage({ client, stageSet, stage: "db", objects: [pvc("ReadWriteOnce")] });

    await assert.rejects(applyStage({ client, stageSet, stage: "db", objects: [pvc("ReadWriteMany")], force: true }), (err: Error) => {
      assert.ok(err instanceof ConflictPolicyError);
      assert.match(err.message, new RegExp(`PersistentVolumeClaim ${ns}/data`));
      assert.match(err.message, /the stage's default Recreate was refused/);
      assert.match(err.message, /allowDataLoss: true/);
      return true;
    });
    await assert.rejects(
      applyStage({
        client,
        stageSet,
        stage: "db",
        objects: [pvc("ReadWriteMany")],
        conflictPolicy: { rules: [{ target: { kind: "PersistentVolumeClaim" }, action: "Recreate" }] },
      }),
      /conflictPolicy\.rules\[0\] was refused; set allowDataLoss: true/,
    );
    const live = await client.get({ apiVersion: "v1", kind: "PersistentVolumeClaim", name: "data", namespace: ns });
    assert.deepEqual((live?.spec as { accessModes: string[] }).accessModes, ["ReadWriteOnce"], "the claim was left alone");
  });
});

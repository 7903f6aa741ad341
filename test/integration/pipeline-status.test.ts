// Every run ends in an honest status: newer input cancels a verify wait,
// prune waits for verify, a spec the schema admits but the controller cannot
// honour is InvalidSpec, colliding inventory names are refused, and a
// teardown that cannot run keeps the finalizer and says what was kept.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createTestNamespace } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { configMapFile, getStageSet, readyCondition, STAGESET, usePipelineFixture, waitForEvent, waitForReason } from "../support/pipeline.js";
import { ChangeRecorder } from "../support/recorder.js";
import { waitFor } from "../support/wait.js";
import { deploymentFile } from "../support/workloads.js";

describe("honest status", { concurrency: true }, () => {
  const fixture = usePipelineFixture();

  test("a new revision published while verify waits on the old one is applied at once (Progressing, event naming the superseded revision)", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "supersede");
    const { client, server } = fixture;
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, deploymentFile("stuck", { schedulable: false }), "r1"));
    await client.create({ ...STAGESET, metadata: { name: "web", namespace }, spec: { timeout: "30m", stages: [{ name: "app", sourceRef: { name: "app" } }] } });
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      await waitFor(
        async () => {
          const s = await getStageSet(client, namespace, "web");
          return s?.status?.stages?.[0]?.phase === "Verifying" && /waiting for Deployment/.test(s.status.stages[0].message ?? "") ? s : undefined;
        },
        { description: "stage app verifying r1", timeoutMs: 60_000 },
      );
      await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("fixed", { ok: "yes" }), "r2"));
      const ready = await waitForReason(client, namespace, "web", "Succeeded", 60_000);
      assert.equal(ready.status?.lastAppliedRevisions?.[`${namespace}/app`], "r2");
      await waitForEvent(client, namespace, "Progressing", /published revision r2, superseding r1/);
      // r1's Deployment left the stage once r2 was healthy.
      await waitFor(async () => (await client.get({ apiVersion: "apps/v1", kind: "Deployment", namespace, name: "stuck" })) === undefined, {
        description: "the r1 Deployment pruned",
        timeoutMs: 30_000,
      });
    } finally {
      await controller.stop();
    }
  });

  test("prune waits for verify: an object renamed in a revision that never becomes healthy is not deleted", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "prune-after");
    const { client, server } = fixture;
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("old-name", { v: "1" }), "r1"));
    await client.create({
      ...STAGESET,
      metadata: { name: "web", namespace },
      spec: { retryInterval: "1h", stages: [{ name: "app", sourceRef: { name: "app" }, timeout: "3s" }] },
    });
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      await waitForReason(client, namespace, "web", "Succeeded", 60_000);
      await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, { ...configMapFile("new-name", { v: "1" }), ...deploymentFile("blocker", { schedulable: false }) }, "r2"));
      const failed = await waitForReason(client, namespace, "web", "HealthCheckFailed", 60_000);
      assert.match(readyCondition(failed)?.message ?? "", /Deployment\/.*blocker is InProgress/);
      assert.ok(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "new-name" }), "the successor was applied");
      assert.ok(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "old-name" }), "the predecessor is kept while the stage is not healthy");
      await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("new-name", { v: "1" }), "r3"));
      await waitForReason(client, namespace, "web", "Succeeded", 60_000);
      assert.equal(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "old-name" }), undefined, "pruned once healthy");
    } finally {
      await controller.stop();
    }
  });

  test("a run that changes one stage writes status only on phase and Ready changes; unchanged stages publish nothing", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "quiet-status");
    const { client, server } = fixture;
    for (const name of ["one", "two", "three"]) {
      await publishExternalArtifact(client, namespace, name, server.add(`${namespace}-${name}`, configMapFile(name, { v: "1" }), "r1"));
    }
    await client.create({
      ...STAGESET,
      metadata: { name: "web", namespace },
      spec: { stages: ["one", "two", "three"].map((name) => ({ name, sourceRef: { name } })) },
    });
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      await waitForReason(client, namespace, "web", "Succeeded", 60_000);
      const recorder = await ChangeRecorder.start(client, [{ ...STAGESET, namespace }]);
      try {
        await publishExternalArtifact(client, namespace, "two", server.add(`${namespace}-two`, configMapFile("two", { v: "2" }), "r2"));
        await waitFor(
          async () => {
            const s = await getStageSet(client, namespace, "web");
            return s?.status?.lastAppliedRevisions?.[`${namespace}/two`] === "r2" && readyCondition(s)?.reason === "Succeeded";
          },
          { description: "r2 of stage two applied", timeoutMs: 60_000 },
        );
        await waitForEvent(client, namespace, "Changes", /configured 1/);
        const writes = recorder.events.filter((e) => e.type === "MODIFIED" && e.name === "web");
        const phases = writes.map((e) => ((e.object.status as { stages?: { name: string; phase: string }[] }).stages ?? []).map((s) => `${s.name}:${s.phase}`).join(","));
        // Applying, Verifying, then the final status: one write per phase change of the changed stage.
        assert.ok(writes.length >= 2 && writes.length <= 4, `status writes for a one-stage change: ${writes.length}: ${phases.join(" | ")}`);
        for (const p of phases) assert.match(p, /one:Ready/, `an unchanged stage never leaves Ready: ${p}`);
        for (const p of phases) assert.match(p, /three:Ready/, `an unchanged stage never leaves Ready: ${p}`);
      } finally {
        await recorder.stop();
      }
    } finally {
      await controller.stop();
    }
  });

  test("a Job with ttlSecondsAfterFinished: 0 that completes and is deleted at once is not waited on until the timeout", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "job-ttl");
    const { client, server } = fixture;
    const job = `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  ttlSecondsAfterFinished: 0
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: registry.invalid/migrate:1}]
`;
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, { "job.yaml": job }, "r1"));
    await client.create({ ...STAGESET, metadata: { name: "web", namespace }, spec: { timeout: "10m", stages: [{ name: "app", sourceRef: { name: "app" } }] } });
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      await waitForReason(client, namespace, "web", "Succeeded", 90_000);
      await waitFor(async () => (await client.get({ apiVersion: "batch/v1", kind: "Job", namespace, name: "migrate" })) === undefined, {
        description: "the finished Job removed by its TTL",
        timeoutMs: 60_000,
      });
    } finally {
      await controller.stop();
    }
  });

  test("an object a KeepExisting policy skipped is not waited on (an unhealthy live Deployment with an immutable change)", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "keep-existing");
    const { client, server } = fixture;
    // Someone's Deployment, never Available (no node matches), whose selector the artifact would change (immutable).
    await client.create({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "legacy", namespace },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "old" } },
        template: {
          metadata: { labels: { app: "old" } },
          spec: { nodeSelector: { "example.test/no-such-node": "true" }, containers: [{ name: "main", image: "registry.invalid/legacy:1" }] },
        },
      },
    });
    const rendered = deploymentFile("legacy", { schedulable: false })["legacy.yaml"]!.replaceAll("app: legacy", "app: new");
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, { "legacy.yaml": rendered, ...configMapFile("fresh", { v: "1" }) }, "r1"));
    await client.create({
      ...STAGESET,
      metadata: { name: "web", namespace },
      spec: { stages: [{ name: "app", sourceRef: { name: "app" }, timeout: "5s", conflictPolicy: { default: "KeepExisting" } }] },
    });
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      await waitForReason(client, namespace, "web", "Succeeded", 60_000);
      await waitForEvent(client, namespace, "Changes", /created 1, skipped 1 \(KeepExisting\)/);
      const live = await client.get({ apiVersion: "apps/v1", kind: "Deployment", namespace, name: "legacy" });
      assert.deepEqual((live?.spec as { selector: unknown }).selector, { matchLabels: { app: "old" } }, "the live object was left as it is");
    } finally {
      await controller.stop();
    }
  });

  test("an interval the schema admits but that overflows is InvalidSpec naming the field", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "bad-interval");
    const { client, server } = fixture;
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("c", { v: "1" }), "r1"));
    await client.create({ ...STAGESET, metadata: { name: "web", namespace }, spec: { interval: "9999999h", stages: [{ name: "app", sourceRef: { name: "app" } }] } });
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      const s = await waitForReason(client, namespace, "web", "InvalidSpec", 30_000);
      assert.match(readyCondition(s)?.message ?? "", /^spec\.interval: "9999999h" is too long/);
      assert.equal(s.status?.conditions?.find((c) => c.type === "Stalled")?.status, "True");
      assert.equal(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "c" }), undefined, "nothing applied");
    } finally {
      await controller.stop();
    }
  });

  test("a spec the API server admits but the controller cannot honour (a 6-field cron) fails closed: InvalidSpec naming the field, nothing applied", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "fail-closed");
    const { client, server } = fixture;
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("c", { v: "1" }), "r1"));
    // No admission webhook runs here, so only the controller's own check stands between this spec and the cluster.
    await client.create({
      ...STAGESET,
      metadata: { name: "web", namespace },
      spec: { updateWindows: [{ type: "Deny", schedule: "0 0 9 * * MON", duration: "8h" }], stages: [{ name: "app", sourceRef: { name: "app" } }] },
    });
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      const s = await waitForReason(client, namespace, "web", "InvalidSpec", 30_000);
      assert.match(readyCondition(s)?.message ?? "", /^spec\.updateWindows\[0\]\.schedule: /);
      assert.equal(s.status?.conditions?.find((c) => c.type === "Stalled")?.status, "True");
      assert.equal(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "c" }), undefined, "nothing applied");
    } finally {
      await controller.stop();
    }
  });

  test("two StageSets whose inventory names collide: the later one is refused, naming both", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "collide");
    const { client, server } = fixture;
    await publishExternalArtifact(client, namespace, "a", server.add(`${namespace}-a`, configMapFile("from-web", { v: "1" }), "r1"));
    await publishExternalArtifact(client, namespace, "b", server.add(`${namespace}-b`, configMapFile("from-web-prod", { v: "1" }), "r1"));
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      await client.create({ ...STAGESET, metadata: { name: "web", namespace }, spec: { stages: [{ name: "prod-eu", sourceRef: { name: "a" } }] } });
      await waitForReason(client, namespace, "web", "Succeeded", 60_000);
      await client.create({ ...STAGESET, metadata: { name: "web-prod", namespace }, spec: { stages: [{ name: "eu", sourceRef: { name: "b" } }] } });
      const refused = await waitForReason(client, namespace, "web-prod", "InvalidSpec", 30_000);
      assert.match(readyCondition(refused)?.message ?? "", new RegExp(`stage "eu" of StageSet ${namespace}/web-prod and stage "prod-eu" of StageSet ${namespace}/web .*web-prod-eu-0`));
      assert.equal(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "from-web-prod" }), undefined);
      const inventory = await client.get({ apiVersion: "stages.metio.wtf/v1", kind: "StageInventory", namespace, name: "web-prod-eu-0" });
      assert.equal(inventory?.metadata.labels?.["stages.metio.wtf/stage-set"], "web", "the first StageSet's inventory is untouched");
    } finally {
      await controller.stop();
    }
  });

  test("deleting a StageSet whose identity is refused keeps the finalizer and inventory, and names what was not removed", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "teardown-denied");
    const { client, server } = fixture;
    await client.create({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "deployer", namespace } });
    await client.create({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "deployer", namespace },
      rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["*"] }],
    });
    const binding = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "deployer", namespace },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "deployer" },
      subjects: [{ kind: "ServiceAccount", name: "deployer", namespace }],
    };
    await client.create(binding);
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("tenant-cm", { v: "1" }), "r1"));
    await client.create({
      ...STAGESET,
      metadata: { name: "web", namespace },
      spec: { serviceAccountName: "deployer", retryInterval: "2s", stages: [{ name: "app", sourceRef: { name: "app" } }] },
    });
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      await waitForReason(client, namespace, "web", "Succeeded", 60_000);
      await client.delete({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", namespace, name: "deployer" });
      await client.delete({ ...STAGESET, namespace, name: "web" });
      await waitForEvent(client, namespace, "TeardownFailed", /not removed: ConfigMap .*\/tenant-cm/);
      const blocked = await getStageSet(client, namespace, "web");
      assert.ok(blocked, "the StageSet stays while its objects cannot be removed");
      assert.match(readyCondition(blocked)?.message ?? "", /deletion blocked/);
      assert.ok(await client.get({ apiVersion: "stages.metio.wtf/v1", kind: "StageInventory", namespace, name: "web-app-0" }), "the inventory is kept");
      assert.ok(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "tenant-cm" }));

      await client.create({ ...binding, metadata: { name: "deployer", namespace } });
      await waitFor(async () => (await getStageSet(client, namespace, "web")) === undefined, { description: "the StageSet deleted once the identity works", timeoutMs: 60_000 });
      assert.equal(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "tenant-cm" }), undefined, "its objects removed");
    } finally {
      await controller.stop();
    }
  });
});

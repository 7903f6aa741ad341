// What holds or triggers a run: suspend, dependsOn, producers publishing
// through an ExternalArtifact, cross-namespace references.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createTestNamespace } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { configMapFile, getStageSet, readyCondition, STAGESET, usePipelineFixture, waitForReason } from "../support/pipeline.js";
import { waitFor } from "../support/wait.js";

describe("sources and gating", { concurrency: true }, () => {
  const fixture = usePipelineFixture();


  const valueOf = async (namespace: string, name: string) =>
    ((await fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name }))?.data as Record<string, string> | undefined)?.value;

  test("suspend applies nothing; --force runs once; resuming reconciles again", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "src-suspend");
    await publishExternalArtifact(fixture.client, namespace, "app", fixture.server.add(`${namespace}-app`, configMapFile("app", { value: "1" })));
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      await fixture.client.create({ ...STAGESET, metadata: { name: "s", namespace }, spec: { suspend: true, stages: [{ name: "app", sourceRef: { name: "app" } }] } });
      const ready = readyCondition(await waitForReason(fixture.client, namespace, "s", "Suspended"));
      assert.equal(ready?.status, "False");
      assert.equal(await valueOf(namespace, "app"), undefined, "nothing applied while suspended");

      // `stagesetctl reconcile --force` runs it once while it stays suspended.
      const force = { "reconcile.fluxcd.io/requestedAt": "force-1", "stages.metio.wtf/force-reconcile": "force-1" };
      await fixture.client.patch({ ...STAGESET, namespace, name: "s" }, { metadata: { annotations: force } }, "merge");
      await waitFor(async () => (await valueOf(namespace, "app")) === "1", { description: "a forced run while suspended", timeoutMs: 30_000 });
      const forced = await waitForReason(fixture.client, namespace, "s", "Succeeded");
      assert.equal(forced.status?.lastHandledReconcileAt, "force-1");
      assert.equal(forced.spec.suspend, true);

      await fixture.client.patch({ ...STAGESET, namespace, name: "s" }, { spec: { suspend: false } }, "merge");
      await fixture.client.patch({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "app" }, { data: { value: "hand-edited" } }, "merge");
      await fixture.client.patch({ ...STAGESET, namespace, name: "s" }, { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "after-resume" } } }, "merge");
      await waitFor(async () => (await valueOf(namespace, "app")) === "1", { description: "reconciled after resume", timeoutMs: 30_000 });
    } finally {
      await controller.stop();
    }
  });

  test("dependsOn holds a StageSet until its dependency is Ready", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "src-depends");
    await publishExternalArtifact(fixture.client, namespace, "late", undefined, { ready: false });
    await publishExternalArtifact(fixture.client, namespace, "after", fixture.server.add(`${namespace}-after`, configMapFile("after", { value: "1" })));
    const controller = await startTestController(fixture.cluster, namespace, ["--requeue-dependency", "1s"]);
    try {
      await fixture.client.create({ ...STAGESET, metadata: { name: "base", namespace }, spec: { stages: [{ name: "late", sourceRef: { name: "late" } }] } });
      await fixture.client.create({ ...STAGESET, metadata: { name: "dependent", namespace }, spec: { dependsOn: [{ name: "base" }], stages: [{ name: "after", sourceRef: { name: "after" } }] } });
      const held = readyCondition(await waitForReason(fixture.client, namespace, "dependent", "DependencyNotReady"));
      assert.match(held?.message ?? "", /base/);
      assert.equal(await valueOf(namespace, "after"), undefined);
      await publishExternalArtifact(fixture.client, namespace, "late", fixture.server.add(`${namespace}-late`, configMapFile("late", { value: "1" })));
      await waitFor(async () => (await valueOf(namespace, "after")) === "1", { description: "the dependent rolled out", timeoutMs: 30_000 });
      await waitForReason(fixture.client, namespace, "dependent", "Succeeded");
    } finally {
      await controller.stop();
    }
  });

  test("a producer is resolved through its ExternalArtifact, and a new revision re-reconciles", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "src-producer");
    // The producer's own kind never needs to be installed: only its ExternalArtifact is read.
    const producer = { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "web" };
    // A same-named producer of another group must not match.
    await publishExternalArtifact(fixture.client, namespace, "decoy", fixture.server.add(`${namespace}-decoy`, configMapFile("web", { value: "decoy" })), {
      sourceRef: { apiVersion: "other.example/v1", kind: "JsonnetSnippet", name: "web" },
    });
    await publishExternalArtifact(fixture.client, namespace, "web-rendered", fixture.server.add(`${namespace}-web`, configMapFile("web", { value: "1" }), "r1"), { sourceRef: producer });
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      await fixture.client.create({ ...STAGESET, metadata: { name: "p", namespace }, spec: { stages: [{ name: "web", sourceRef: producer }] } });
      await waitFor(async () => (await valueOf(namespace, "web")) === "1", { description: "producer artifact applied", timeoutMs: 30_000 });
      await publishExternalArtifact(fixture.client, namespace, "web-rendered", fixture.server.add(`${namespace}-web`, configMapFile("web", { value: "2" }), "r2"), { sourceRef: producer });
      await waitFor(async () => (await valueOf(namespace, "web")) === "2", { description: "new producer revision applied", timeoutMs: 30_000 });
      await waitFor(async () => (await getStageSet(fixture.client, namespace, "p"))?.status?.lastAppliedRevisions?.[`${namespace}/web`] === "r2", {
        description: "status records the producer's revision",
        timeoutMs: 10_000,
      });
    } finally {
      await controller.stop();
    }
  });

  test("cross-namespace sources work, and are refused under --no-cross-namespace-refs", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "src-cross");
    const other = await createTestNamespace(fixture.cluster, "src-cross-other");
    await publishExternalArtifact(fixture.client, other, "shared", fixture.server.add(`${other}-shared`, configMapFile("shared", { value: "1" })));
    const allowed = await startTestController(fixture.cluster, namespace, ["--watch-namespaces", other]);
    try {
      await fixture.client.create({ ...STAGESET, metadata: { name: "x", namespace }, spec: { stages: [{ name: "s", sourceRef: { name: "shared", namespace: other } }] } });
      await waitFor(async () => (await valueOf(namespace, "shared")) === "1", { description: "cross-namespace source applied", timeoutMs: 30_000 });
    } finally {
      await allowed.stop();
    }
    const refused = await startTestController(fixture.cluster, namespace, ["--watch-namespaces", other, "--no-cross-namespace-refs"]);
    try {
      await fixture.client.patch({ ...STAGESET, namespace, name: "x" }, { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "now" } } }, "merge");
      const ready = readyCondition(await waitForReason(fixture.client, namespace, "x", "InvalidSpec"));
      assert.match(ready?.message ?? "", /spec\.stages\[0\]\.sourceRef\.namespace/);
    } finally {
      await refused.stop();
    }
  });
});

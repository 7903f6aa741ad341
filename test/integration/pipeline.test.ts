// The stage pipeline end to end: a real API fixture.server (with kube-controller-manager
// and kwok, so Deployments become Available), artifacts served over HTTP on
// loopback as ExternalArtifacts, the real kustomize, the controller in-process.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { stringify } from "yaml";
import type { KubeObject } from "../../src/api/types.js";
import { createTestNamespace } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { getStageSet, STAGESET, usePipelineFixture, waitForEvent, waitForReason } from "../support/pipeline.js";
import { ChangeRecorder } from "../support/recorder.js";
import { widgetCrd } from "../support/widgets.js";
import { waitFor } from "../support/wait.js";

function crdYaml(group: string): string {
  return stringify(widgetCrd(group));
}

function deploymentYaml(name: string, replicas = 1): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      containers:
        - name: main
          image: registry.invalid/${name}:1
`;
}

function configMapYaml(name: string, data: Record<string, string>): string {
  const lines = Object.entries(data).map(([k, v]) => `  ${k}: "${v}"`);
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n${lines.join("\n")}\n`;
}

describe("stage pipeline", { concurrency: true }, () => {
  const fixture = usePipelineFixture();

  test("three stages apply in order, prune, re-create, correct drift, and tear down last stage first", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "pipe-order");
    const group = `${namespace}.example.test`;
    const extraNamespace = `${namespace}-extra`;
    const config = (withExtra: boolean) => ({
      "widget.yaml": `apiVersion: ${group}/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n`,
      "settings.yaml": configMapYaml("settings", { mode: "blue" }),
      "namespace.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${extraNamespace}\n`,
      ...(withExtra ? { "extra.yaml": configMapYaml("extra", { keep: "me" }) } : {}),
    });
    await publishExternalArtifact(fixture.client, namespace, "crds", fixture.server.add(`${namespace}-crds`, { "crd.yaml": crdYaml(group), "first.yaml": deploymentYaml("first") }));
    await publishExternalArtifact(fixture.client, namespace, "config", fixture.server.add(`${namespace}-config`, config(true), "v1"));
    await publishExternalArtifact(fixture.client, namespace, "app", fixture.server.add(`${namespace}-app`, { "web.yaml": deploymentYaml("web", 2) }));

    const recorder = await ChangeRecorder.start(fixture.client, [
      { apiVersion: "apps/v1", kind: "Deployment", namespace },
      { apiVersion: "v1", kind: "ConfigMap", namespace },
    ]);
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      await fixture.client.create({
        ...STAGESET,
        metadata: { name: "platform", namespace },
        spec: {
          driftDetectionInterval: "2s",
          stages: [
            { name: "crds", sourceRef: { name: "crds" } },
            { name: "config", sourceRef: { name: "config" } },
            { name: "app", sourceRef: { name: "app" } },
          ],
        },
      });
      const ready = await waitForReason(fixture.client, namespace, "platform", "Succeeded", 90_000);
      assert.deepEqual(
        ready.status?.stages?.map((s) => [s.name, s.phase]),
        [
          ["crds", "Ready"],
          ["config", "Ready"],
          ["app", "Ready"],
        ],
      );
      assert.equal(ready.status?.stages?.[1]?.entriesCount, 4);
      assert.equal(ready.status?.lastAppliedRevisions?.[`${namespace}/config`], "v1");

      // Order, from etcd revisions: stage 2's objects were created only after
      // stage 1's Deployment was Available, stage 3's only after stage 2's.
      const firstAvailable = recorder.first(
        (e) => e.kind === "Deployment" && e.name === "first" && isAvailable(e.object),
      );
      const settingsCreated = recorder.first((e) => e.kind === "ConfigMap" && e.name === "settings" && e.type === "ADDED");
      const webCreated = recorder.first((e) => e.kind === "Deployment" && e.name === "web" && e.type === "ADDED");
      assert.ok(firstAvailable && settingsCreated && webCreated, "all three stages were observed");
      assert.ok(settingsCreated.revision > firstAvailable.revision, "stage 2 started only after stage 1 was Ready");
      assert.ok(webCreated.revision > settingsCreated.revision, "stage 3 started after stage 2");
      const widget = await fixture.client.get({ apiVersion: `${group}/v1`, kind: "Widget", namespace, name: "w1" });
      assert.equal((widget?.metadata.labels ?? {})["stages.metio.wtf/stage"], "config");

      // An object removed from the artifact is pruned ...
      await publishExternalArtifact(fixture.client, namespace, "config", fixture.server.add(`${namespace}-config`, config(false), "v2"));
      await waitFor(async () => (await fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "extra" })) === undefined, {
        description: "ConfigMap extra pruned",
        timeoutMs: 30_000,
      });
      // ... and re-created when it comes back.
      await publishExternalArtifact(fixture.client, namespace, "config", fixture.server.add(`${namespace}-config`, config(true), "v3"));
      await waitFor(async () => (await fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "extra" })) !== undefined, {
        description: "ConfigMap extra re-created",
        timeoutMs: 30_000,
      });

      // A managed field edited by hand is restored at the next drift check.
      await fixture.client.patch({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "settings" }, { data: { mode: "red" } }, "merge");
      await waitFor(
        async () => ((await fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "settings" }))?.data as Record<string, string>)?.mode === "blue",
        { description: "drift on ConfigMap settings corrected", timeoutMs: 30_000 },
      );
      await waitForEvent(fixture.client, namespace, "DriftCorrected", /stage "config"/);

      // Deleting the StageSet removes its objects, last stage first.
      await fixture.client.delete({ ...STAGESET, namespace, name: "platform" });
      await waitFor(async () => (await getStageSet(fixture.client, namespace, "platform")) === undefined, {
        description: "StageSet platform gone (finalizer done)",
        timeoutMs: 90_000,
      });
      const deleted = (kind: string, name: string) => recorder.first((e) => e.kind === kind && e.name === name && e.type === "DELETED");
      const webGone = deleted("Deployment", "web");
      const settingsGone = deleted("ConfigMap", "settings");
      const firstGone = deleted("Deployment", "first");
      assert.ok(webGone && settingsGone && firstGone, "every stage's objects were deleted");
      assert.ok(webGone.revision < settingsGone.revision, "stage 3 went before stage 2");
      assert.ok(settingsGone.revision < firstGone.revision, "stage 2 went before stage 1");
      assert.equal(await fixture.client.get({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name: `widgets.${group}` }), undefined);
    } finally {
      await controller.stop();
      await recorder.stop();
      await fixture.client.delete({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name: `widgets.${group}` }).catch(() => false);
      await fixture.client.delete({ apiVersion: "v1", kind: "Namespace", name: extraNamespace }).catch(() => false);
    }
  });

  test("an object that moves to a later stage is handed over, never deleted", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "pipe-move");
    const moving = configMapYaml("moving", { v: "1" });
    await publishExternalArtifact(fixture.client, namespace, "one", fixture.server.add(`${namespace}-one`, { "a.yaml": configMapYaml("a", { v: "1" }), "moving.yaml": moving }, "one@1"));
    await publishExternalArtifact(fixture.client, namespace, "two", fixture.server.add(`${namespace}-two`, { "b.yaml": configMapYaml("b", { v: "1" }) }, "two@1"));
    const recorder = await ChangeRecorder.start(fixture.client, [{ apiVersion: "v1", kind: "ConfigMap", namespace }]);
    let controller = await startTestController(fixture.cluster, namespace);
    try {
      await fixture.client.create({
        ...STAGESET,
        metadata: { name: "mover", namespace },
        spec: { stages: [{ name: "one", sourceRef: { name: "one" } }, { name: "two", sourceRef: { name: "two" } }] },
      });
      await waitForReason(fixture.client, namespace, "mover", "Succeeded");
      // "moving" leaves stage one and joins stage two; both revisions are
      // published before the controller looks again, so one run sees both.
      await controller.stop();
      await publishExternalArtifact(fixture.client, namespace, "one", fixture.server.add(`${namespace}-one`, { "a.yaml": configMapYaml("a", { v: "1" }) }, "one@2"));
      await publishExternalArtifact(fixture.client, namespace, "two", fixture.server.add(`${namespace}-two`, { "b.yaml": configMapYaml("b", { v: "1" }), "moving.yaml": moving }, "two@2"));
      controller = await startTestController(fixture.cluster, namespace);
      await waitFor(
        async () => {
          const cm = await fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "moving" });
          return cm?.metadata.labels?.["stages.metio.wtf/stage"] === "two";
        },
        { description: "ConfigMap moving labelled for stage two", timeoutMs: 30_000 },
      );
      await waitForReason(fixture.client, namespace, "mover", "Succeeded");
      assert.equal(recorder.first((e) => e.name === "moving" && e.type === "DELETED"), undefined, "the moved object was never deleted");
    } finally {
      await controller.stop();
      await recorder.stop();
    }
  });
});

function isAvailable(obj: KubeObject): boolean {
  const conditions = (obj.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions;
  return conditions?.some((c) => c.type === "Available" && c.status === "True") ?? false;
}

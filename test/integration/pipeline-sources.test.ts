// What holds or triggers a run: suspend, dependsOn, producers publishing
// through an ExternalArtifact, cross-namespace references.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { StageSet } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { ArtifactServer } from "../support/artifact-server.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { waitFor } from "../support/wait.js";

const STAGESET = { apiVersion: "stages.metio.wtf/v1", kind: "StageSet" } as const;

function configMap(name: string, value: string): Record<string, string> {
  return { [`${name}.yaml`]: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  value: "${value}"\n` };
}

describe("sources and gating", { concurrency: true }, () => {
  let cluster: TestCluster;
  let server: ArtifactServer;
  let client: KubeClient;

  before(async () => {
    cluster = await testCluster();
    server = new ArtifactServer();
    await server.start();
    client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  });

  after(async () => {
    await server.stop();
    client.close();
  });

  const reasonOf = async (namespace: string, name: string) =>
    (await client.get<StageSet>({ ...STAGESET, namespace, name }))?.status?.conditions?.find((c) => c.type === "Ready");

  const valueOf = async (namespace: string, name: string) =>
    ((await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name }))?.data as Record<string, string> | undefined)?.value;

  test("suspend applies nothing; resuming rolls out", async () => {
    const namespace = await createTestNamespace(cluster, "src-suspend");
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMap("app", "1")));
    const controller = await startTestController(cluster, namespace);
    try {
      await client.create({ ...STAGESET, metadata: { name: "s", namespace }, spec: { suspend: true, stages: [{ name: "app", sourceRef: { name: "app" } }] } });
      const ready = await waitFor(async () => ((await reasonOf(namespace, "s"))?.reason === "Suspended" ? reasonOf(namespace, "s") : undefined), {
        description: "Suspended",
        timeoutMs: 30_000,
      });
      assert.equal(ready?.status, "False");
      assert.equal(await valueOf(namespace, "app"), undefined, "nothing applied while suspended");
      await client.patch({ ...STAGESET, namespace, name: "s" }, { spec: { suspend: false } }, "merge");
      await waitFor(async () => (await valueOf(namespace, "app")) === "1", { description: "rolled out after resume", timeoutMs: 30_000 });
    } finally {
      await controller.stop();
    }
  });

  test("dependsOn holds a StageSet until its dependency is Ready", async () => {
    const namespace = await createTestNamespace(cluster, "src-depends");
    await publishExternalArtifact(client, namespace, "late", undefined, { ready: false });
    await publishExternalArtifact(client, namespace, "after", server.add(`${namespace}-after`, configMap("after", "1")));
    const controller = await startTestController(cluster, namespace, ["--requeue-dependency", "1s"]);
    try {
      await client.create({ ...STAGESET, metadata: { name: "base", namespace }, spec: { stages: [{ name: "late", sourceRef: { name: "late" } }] } });
      await client.create({ ...STAGESET, metadata: { name: "dependent", namespace }, spec: { dependsOn: [{ name: "base" }], stages: [{ name: "after", sourceRef: { name: "after" } }] } });
      const held = await waitFor(async () => ((await reasonOf(namespace, "dependent"))?.reason === "DependencyNotReady" ? reasonOf(namespace, "dependent") : undefined), {
        description: "DependencyNotReady",
        timeoutMs: 30_000,
      });
      assert.match(held?.message ?? "", /base/);
      assert.equal(await valueOf(namespace, "after"), undefined);
      await publishExternalArtifact(client, namespace, "late", server.add(`${namespace}-late`, configMap("late", "1")));
      await waitFor(async () => (await valueOf(namespace, "after")) === "1", { description: "the dependent rolled out", timeoutMs: 30_000 });
      await waitFor(async () => (await reasonOf(namespace, "dependent"))?.reason === "Succeeded", { description: "the dependent Succeeded", timeoutMs: 30_000 });
    } finally {
      await controller.stop();
    }
  });

  test("a producer is resolved through its ExternalArtifact, and a new revision re-reconciles", async () => {
    const namespace = await createTestNamespace(cluster, "src-producer");
    // The producer's own kind never needs to be installed: only its ExternalArtifact is read.
    const producer = { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "web" };
    // A same-named producer of another group must not match.
    await publishExternalArtifact(client, namespace, "decoy", server.add(`${namespace}-decoy`, configMap("web", "decoy")), {
      sourceRef: { apiVersion: "other.example/v1", kind: "JsonnetSnippet", name: "web" },
    });
    await publishExternalArtifact(client, namespace, "web-rendered", server.add(`${namespace}-web`, configMap("web", "1"), "r1"), { sourceRef: producer });
    const controller = await startTestController(cluster, namespace);
    try {
      await client.create({ ...STAGESET, metadata: { name: "p", namespace }, spec: { stages: [{ name: "web", sourceRef: producer }] } });
      await waitFor(async () => (await valueOf(namespace, "web")) === "1", { description: "producer artifact applied", timeoutMs: 30_000 });
      await publishExternalArtifact(client, namespace, "web-rendered", server.add(`${namespace}-web`, configMap("web", "2"), "r2"), { sourceRef: producer });
      await waitFor(async () => (await valueOf(namespace, "web")) === "2", { description: "new producer revision applied", timeoutMs: 30_000 });
      await waitFor(async () => (await client.get<StageSet>({ ...STAGESET, namespace, name: "p" }))?.status?.lastAppliedRevisions?.[`${namespace}/web`] === "r2", {
        description: "status records the producer's revision",
        timeoutMs: 10_000,
      });
    } finally {
      await controller.stop();
    }
  });

  test("cross-namespace sources work, and are refused under --no-cross-namespace-refs", async () => {
    const namespace = await createTestNamespace(cluster, "src-cross");
    const other = await createTestNamespace(cluster, "src-cross-other");
    await publishExternalArtifact(client, other, "shared", server.add(`${other}-shared`, configMap("shared", "1")));
    const allowed = await startTestController(cluster, namespace, ["--watch-namespaces", other]);
    try {
      await client.create({ ...STAGESET, metadata: { name: "x", namespace }, spec: { stages: [{ name: "s", sourceRef: { name: "shared", namespace: other } }] } });
      await waitFor(async () => (await valueOf(namespace, "shared")) === "1", { description: "cross-namespace source applied", timeoutMs: 30_000 });
    } finally {
      await allowed.stop();
    }
    const refused = await startTestController(cluster, namespace, ["--watch-namespaces", other, "--no-cross-namespace-refs"]);
    try {
      await client.patch({ ...STAGESET, namespace, name: "x" }, { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "now" } } }, "merge");
      const ready = await waitFor(async () => ((await reasonOf(namespace, "x"))?.reason === "InvalidSpec" ? reasonOf(namespace, "x") : undefined), {
        description: "InvalidSpec under --no-cross-namespace-refs",
        timeoutMs: 30_000,
      });
      assert.match(ready?.message ?? "", /spec\.stages\[0\]\.sourceRef\.namespace/);
    } finally {
      await refused.stop();
    }
  });
});

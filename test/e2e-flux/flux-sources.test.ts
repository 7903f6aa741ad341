// End to end with Flux's real source-controller (v1.9.6, built from its
// module by hack/tools.sh) serving every source kind a stage reads, from real
// servers on loopback:
//   - GitRepository: a git server (`git http-backend`) holding plain manifests
//     — the documentation's Quickstart, then a pushed commit rolling out with
//     no StageSet edit;
//   - OCIRepository: the distribution registry, the artifact pushed by the test;
//   - Bucket: SeaweedFS's S3 gateway;
//   - a producer: a test CRD whose controller (below, in this file) publishes
//     an ExternalArtifact pointing back at it, as JaaS does;
// a three-stage StageSet over OCI → Bucket → producer; and source-controller's
// artifact garbage collection (retention: 1 record, TTL 1s) not breaking a
// held update window or a rollback, thanks to the rollback store.
// The StageSet controller runs in-process (test/support/controller.ts),
// watching only the test's namespace; so does each source-controller.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { stringify } from "yaml";
import type { KubeObject, StageSet } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { Informer } from "../../src/kube/informer.js";
import { ArtifactServer } from "../support/artifact-server.js";
import { runCli } from "../support/cli.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { ensureCrds } from "../support/flux-controller.js";
import { publishExternalArtifact, SOURCE_API_VERSION } from "../support/flux.js";
import { GitServer } from "../support/git-server.js";
import { OciRegistry } from "../support/oci-registry.js";
import { getStageSet, readyCondition, STAGESET, waitForEvent, waitForReason } from "../support/pipeline.js";
import { S3Server } from "../support/s3-server.js";
import { ensureSourceCrds, SourceController } from "../support/source-controller.js";
import { waitFor } from "../support/wait.js";
import { deploymentFile } from "../support/workloads.js";
import { widgetCrd } from "../support/widgets.js";

/** Fetched by Flux's controllers and ours: cold starts and clones on a busy two-core machine. */
const SLOW = 120_000;

type Source = KubeObject & { status?: { artifact?: { revision: string; url: string; digest: string }; conditions?: { type: string; status: string; message?: string }[] } };

describe("with Flux's source-controller", { concurrency: true }, () => {
  let cluster: TestCluster;
  let client: KubeClient;
  before(async () => {
    cluster = await testCluster();
    client = KubeClient.fromKubeConfig(cluster.kubeConfig);
    await ensureSourceCrds(client);
  });
  after(() => client.close());

  const getSource = (kind: string, namespace: string, name: string) => client.get<Source>({ apiVersion: SOURCE_API_VERSION, kind, namespace, name });

  /** Waits until source-controller reports the source Ready at a revision `accept` takes; returns its artifact. */
  const waitForArtifact = (kind: string, namespace: string, name: string, accept: (revision: string) => boolean = () => true) =>
    waitFor(
      async () => {
        const source = await getSource(kind, namespace, name);
        const ready = source?.status?.conditions?.find((c) => c.type === "Ready");
        const artifact = source?.status?.artifact;
        if (ready?.status === "False" && /failed|error/i.test(ready.message ?? "")) throw new Error(`${kind} ${name}: ${ready.message}`);
        return ready?.status === "True" && artifact && accept(artifact.revision) ? artifact : undefined;
      },
      { description: `${kind} ${namespace}/${name} to have a Ready artifact`, timeoutMs: SLOW, intervalMs: 200 },
    );

  /** What `flux reconcile source git NAME` does: ask for a reconcile now. */
  const requestSourceReconcile = (kind: string, namespace: string, name: string, token: string) =>
    client.patch({ apiVersion: SOURCE_API_VERSION, kind, namespace, name }, { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": token } } }, "merge");

  const configMapData = async (namespace: string, name: string) =>
    (await client.get<KubeObject & { data?: Record<string, string> }>({ apiVersion: "v1", kind: "ConfigMap", namespace, name }))?.data;

  const startSourceController = async (namespace: string, extra: { retentionTtl?: string; retentionRecords?: number } = {}) => {
    const sc = new SourceController({ kubeconfigPath: cluster.kubeconfigPath, namespace, ...extra });
    await sc.start();
    return sc;
  };

  test("the Quickstart: one stage from a GitRepository of plain manifests rolls out, and a pushed commit rolls out with no StageSet edit", async () => {
    const namespace = await createTestNamespace(cluster, "e2e-quickstart");
    const git = new GitServer();
    await git.start();
    const sc = await startSourceController(namespace);
    const controller = await startTestController(cluster, namespace);
    try {
      const manifests = (message: string, replicas: number) => ({
        "deploy/web.yaml": deploymentFile("web")["web.yaml"]!.replace("replicas: 1", `replicas: ${replicas}`),
        "deploy/settings.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  message: "${message}"\n`,
      });
      const first = await git.createRepo("my-app", manifests("hello", 1));
      // Step 2: a GitRepository pointing at a repository of plain manifests.
      await client.create({
        apiVersion: SOURCE_API_VERSION,
        kind: "GitRepository",
        metadata: { name: "my-app-manifests", namespace },
        spec: { interval: "1m", url: git.url("my-app"), ref: { branch: "main" } },
      });
      // Step 3: a StageSet with one stage reading it.
      await client.create({
        ...STAGESET,
        metadata: { name: "my-app", namespace },
        spec: { stages: [{ name: "app", sourceRef: { kind: "GitRepository", name: "my-app-manifests" } }] },
      });
      const firstArtifact = await waitForArtifact("GitRepository", namespace, "my-app-manifests");
      assert.equal(firstArtifact.revision, `main@sha1:${first}`);
      assert.ok(firstArtifact.url.startsWith(`http://${sc.storageAddress}/gitrepository/${namespace}/my-app-manifests/`), firstArtifact.url);
      const ready = await waitForReason(client, namespace, "my-app", "Succeeded", SLOW);
      assert.deepEqual(ready.status?.lastAppliedRevisions, { [`${namespace}/my-app-manifests`]: `main@sha1:${first}` });
      assert.equal(ready.status?.stages?.[0]?.phase, "Ready");
      assert.equal((await configMapData(namespace, "settings"))?.message, "hello");
      const web = await client.get<KubeObject & { spec: { replicas: number } }>({ apiVersion: "apps/v1", kind: "Deployment", namespace, name: "web" });
      assert.equal(web?.spec.replicas, 1);
      // Step 4: see it.
      const get = await runCli(["get", "my-app", "-n", namespace], { kubeconfig: cluster.kubeconfigPath });
      assert.equal(get.code, 0, get.stderr);
      assert.match(get.stdout, new RegExp(`main@sha1:${first.slice(0, 7)}`));

      // A new commit, and the source reconciled (what its interval, or `flux reconcile source git`, does): no StageSet edit.
      const second = await git.commit("my-app", manifests("hello again", 2), "scale to two");
      await requestSourceReconcile("GitRepository", namespace, "my-app-manifests", "push-1");
      await waitForArtifact("GitRepository", namespace, "my-app-manifests", (r) => r === `main@sha1:${second}`);
      const rolled = await waitFor(
        async () => {
          const s = await getStageSet(client, namespace, "my-app");
          return s?.status?.lastAppliedRevisions?.[`${namespace}/my-app-manifests`] === `main@sha1:${second}` && readyCondition(s)?.reason === "Succeeded" ? s : undefined;
        },
        { description: "the pushed commit rolled out", timeoutMs: SLOW },
      );
      assert.equal(rolled.metadata.generation, ready.metadata.generation, "the StageSet was not edited");
      assert.equal((await configMapData(namespace, "settings"))?.message, "hello again");
      const scaled = await client.get<KubeObject & { spec: { replicas: number } }>({ apiVersion: "apps/v1", kind: "Deployment", namespace, name: "web" });
      assert.equal(scaled?.spec.replicas, 2);
      assert.ok((git.hits.get("/my-app.git") ?? 0) >= 2, "source-controller fetched over HTTP");
    } finally {
      await controller.stop();
      await sc.stop();
      await git.stop();
    }
  });

  test("three stages over an OCIRepository, a Bucket and a producer's ExternalArtifact roll out in order; a producer change rolls out", async () => {
    const namespace = await createTestNamespace(cluster, "e2e-three");
    const group = `${namespace}.e2e.test`;
    await ensureCrds(client, [SNIPPET_CRD]);
    const registry = new OciRegistry();
    const s3 = new S3Server({ buckets: ["manifests"] });
    const files = new ArtifactServer();
    await Promise.all([registry.start(), s3.start(), files.start()]);
    const sc = await startSourceController(namespace);
    const producer = new SnippetProducer(client, files, namespace);
    await producer.start();
    const controller = await startTestController(cluster, namespace);
    try {
      // Stage 1 (OCI): the Widget CRD. Stage 3's Widget can only be applied after it.
      const pushed = await registry.push(`${namespace}/crds`, "v1", { "crd.yaml": stringify(widgetCrd(group)) });
      await client.create({
        apiVersion: SOURCE_API_VERSION,
        kind: "OCIRepository",
        metadata: { name: "crds", namespace },
        spec: { interval: "10m", url: registry.url(`${namespace}/crds`), ref: { tag: "v1" }, insecure: true },
      });
      // Stage 2 (Bucket): a Deployment and a ConfigMap.
      const s3client = s3.client();
      for (const [key, body] of Object.entries({ ...deploymentFile("operator"), "settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: operator-settings}\ndata: {level: info}\n" })) {
        await s3client.send(new PutObjectCommand({ Bucket: "manifests", Key: `operator/${key}`, Body: body }));
      }
      s3client.destroy();
      await client.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "s3-credentials", namespace }, stringData: { accesskey: s3.accessKey, secretkey: s3.secretKey } });
      await client.create({
        apiVersion: SOURCE_API_VERSION,
        kind: "Bucket",
        metadata: { name: "operator", namespace },
        spec: { interval: "10m", provider: "generic", bucketName: "manifests", endpoint: s3.endpoint, insecure: true, secretRef: { name: "s3-credentials" } },
      });
      // Stage 3 (producer): a Snippet rendered into a Widget by the test's controller.
      await client.create({ apiVersion: SNIPPET_API_VERSION, kind: "Snippet", metadata: { name: "widgets", namespace }, spec: { group, size: "small" } });

      await client.create({
        ...STAGESET,
        metadata: { name: "platform", namespace },
        spec: {
          stages: [
            { name: "crds", sourceRef: { kind: "OCIRepository", name: "crds" } },
            { name: "operator", sourceRef: { kind: "Bucket", name: "operator" }, path: "./operator" },
            { name: "workloads", sourceRef: { apiVersion: SNIPPET_API_VERSION, kind: "Snippet", name: "widgets" } },
          ],
        },
      });
      const oci = await waitForArtifact("OCIRepository", namespace, "crds");
      assert.equal(oci.revision, pushed.revision, "source-controller pulled the pushed manifest");
      const bucket = await waitForArtifact("Bucket", namespace, "operator");
      const ready = await waitForReason(client, namespace, "platform", "Succeeded", SLOW);
      const producerRevision = producer.revisions.at(-1)!;
      assert.deepEqual(ready.status?.lastAppliedRevisions, {
        [`${namespace}/crds`]: pushed.revision,
        [`${namespace}/operator`]: bucket.revision,
        [`${namespace}/widgets`]: producerRevision,
      });
      assert.deepEqual(
        ready.status?.stages?.map((s) => [s.name, s.phase, s.appliedRevision]),
        [
          ["crds", "Ready", pushed.revision],
          ["operator", "Ready", bucket.revision],
          ["workloads", "Ready", producerRevision],
        ],
      );
      assert.deepEqual(
        ready.status?.lastAppliedSnapshot?.map((s) => [s.stage, s.url.split("/").slice(0, 3).join("/")]),
        [
          ["crds", `http://${sc.storageAddress}`],
          ["operator", `http://${sc.storageAddress}`],
          ["workloads", new URL(producer.lastUrl).origin],
        ],
        "stages 1 and 2 fetched from source-controller's storage, stage 3 from the producer's server",
      );
      const widget = await client.get<KubeObject & { spec?: { size?: string } }>({ apiVersion: `${group}/v1`, kind: "Widget", namespace, name: "widgets" });
      assert.equal(widget?.spec?.size, "small");
      assert.equal((await configMapData(namespace, "operator-settings"))?.level, "info");

      // The producer publishes a new revision when its resource changes: rolled out, no StageSet edit.
      await client.patch({ apiVersion: SNIPPET_API_VERSION, kind: "Snippet", namespace, name: "widgets" }, { spec: { size: "large" } }, "merge");
      await waitFor(
        async () => (await client.get<KubeObject & { spec?: { size?: string } }>({ apiVersion: `${group}/v1`, kind: "Widget", namespace, name: "widgets" }))?.spec?.size === "large",
        { description: "the producer's new revision applied", timeoutMs: SLOW },
      );
      const after = await waitForReason(client, namespace, "platform", "Succeeded", SLOW);
      assert.equal(after.status?.lastAppliedRevisions?.[`${namespace}/widgets`], producer.revisions.at(-1));
      assert.equal(after.metadata.generation, ready.metadata.generation);
    } finally {
      await controller.stop();
      await producer.stop();
      await sc.stop();
      await Promise.all([registry.stop(), s3.stop(), files.stop()]);
    }
  });

  test("source-controller's garbage collection breaks neither a held update window nor a rollback: both come from the rollback store", async () => {
    const namespace = await createTestNamespace(cluster, "e2e-gc");
    const git = new GitServer();
    await git.start();
    // Keep one artifact per source, and drop older ones 1 s after they were written.
    const sc = await startSourceController(namespace, { retentionTtl: "1s", retentionRecords: 1 });
    const store = mkdtempSync(join(tmpdir(), "e2e-gc-store-"));
    const storeFlags = ["--rollback-store-path", store];
    let controller = await startTestController(cluster, namespace, storeFlags);
    try {
      const files = (revision: string, schedulable: boolean) => ({
        ...deploymentFile("web", { image: `registry.invalid/web:${revision}`, schedulable }),
        "settings.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {revision: ${revision}}\n`,
      });
      const good = await git.createRepo("app", files("r1", true));
      await client.create({
        apiVersion: SOURCE_API_VERSION,
        kind: "GitRepository",
        metadata: { name: "app", namespace },
        spec: { interval: "1h", url: git.url("app"), ref: { branch: "main" } },
      });
      await client.create({
        ...STAGESET,
        metadata: { name: "shop", namespace },
        spec: { rollbackOnFailure: true, retryInterval: "2s", stages: [{ name: "app", sourceRef: { kind: "GitRepository", name: "app" }, timeout: "5s" }] },
      });
      const applied = await waitForReason(client, namespace, "shop", "Succeeded", SLOW);
      const snapshot = applied.status?.lastAppliedSnapshot?.[0];
      assert.equal(snapshot?.revision, `main@sha1:${good}`);

      // A freeze starts (a Deny window around now); then a bad commit lands and source-controller replaces the artifact.
      await client.patch({ ...STAGESET, namespace, name: "shop" }, { spec: { updateWindows: [{ type: "Deny", from: new Date(Date.now() - 60_000).toISOString(), to: new Date(Date.now() + 3_600_000).toISOString() }] } }, "merge");
      await waitForReason(client, namespace, "shop", "Succeeded", SLOW);
      const bad = await git.commit("app", files("r2", false), "r2: unschedulable");
      await requestSourceReconcile("GitRepository", namespace, "app", "bad");
      await waitForArtifact("GitRepository", namespace, "app", (r) => r === `main@sha1:${bad}`);
      const held = await waitForReason(client, namespace, "shop", "UpdateDeferred", SLOW);
      assert.deepEqual(held.status?.pendingUpdate?.revisions, { [`${namespace}/app`]: `main@sha1:${bad}` });
      // source-controller collects garbage at the start of a reconcile: the next one removes the good artifact.
      await requestSourceReconcile("GitRepository", namespace, "app", "collect-garbage");
      await waitFor(async () => (await fetch(snapshot!.url)).status === 404, { description: `source-controller to garbage-collect ${snapshot!.url}`, timeoutMs: 30_000, intervalMs: 250 });

      const handEdit = () =>
        client.patch({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "settings" }, { data: { revision: "hand-edited" } }, "merge", { fieldManager: "kubectl-edit" });
      const reconcileNow = async (token: string): Promise<StageSet> => {
        await client.patch({ ...STAGESET, namespace, name: "shop" }, { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": token } } }, "merge");
        return waitFor(
          async () => {
            const s = await getStageSet(client, namespace, "shop");
            return s?.status?.lastHandledReconcileAt === token ? s : undefined;
          },
          { description: `reconcile request ${token} handled`, timeoutMs: SLOW },
        );
      };

      // Without the store, a new controller (empty caches) cannot re-apply the pinned snapshot: it says so.
      await controller.stop();
      controller = await startTestController(cluster, namespace);
      await handEdit();
      const paused = await reconcileNow("no-store");
      assert.equal(readyCondition(paused)?.reason, "UpdateDeferred");
      assert.match(readyCondition(paused)?.message ?? "", /drift correction paused from stage "app": its pinned revision main@sha1:[0-9a-f]+ is unavailable/);
      assert.equal((await configMapData(namespace, "settings"))?.revision, "hand-edited");

      // With the store: the held StageSet re-applies its pinned snapshot, fetched from the store.
      await controller.stop();
      controller = await startTestController(cluster, namespace, storeFlags);
      const corrected = await reconcileNow("with-store");
      assert.equal(readyCondition(corrected)?.reason, "UpdateDeferred");
      assert.doesNotMatch(readyCondition(corrected)?.message ?? "", /unavailable/);
      assert.equal((await configMapData(namespace, "settings"))?.revision, "r1", "drift corrected back to the pinned snapshot");
      assert.deepEqual(corrected.status?.lastAppliedRevisions, { [`${namespace}/app`]: `main@sha1:${good}` });

      // Ship the held revision once (a new controller again: nothing cached); it fails health and is rolled back from the store.
      await controller.stop();
      controller = await startTestController(cluster, namespace, storeFlags);
      await client.patch({ ...STAGESET, namespace, name: "shop" }, { metadata: { annotations: { "stages.metio.wtf/update-now": "ship-r2" } } }, "merge");
      const rolled = await waitForReason(client, namespace, "shop", "RolledBack", SLOW);
      assert.match(readyCondition(rolled)?.message ?? "", new RegExp(`rolled back stage "app" main@sha1:${bad} → main@sha1:${good}`));
      assert.equal((await configMapData(namespace, "settings"))?.revision, "r1");
      const web = await client.get<KubeObject & { spec: { template: { spec: { containers: { image: string }[] } } } }>({ apiVersion: "apps/v1", kind: "Deployment", namespace, name: "web" });
      assert.equal(web?.spec.template.spec.containers[0]?.image, "registry.invalid/web:r1");
      assert.equal((await fetch(snapshot!.url)).status, 404, "the good artifact still only exists in the store");
      await waitForEvent(client, namespace, "RolledBack", /rolled back stage "app"/);
    } finally {
      await controller.stop();
      await sc.stop();
      await git.stop();
      rmSync(store, { recursive: true, force: true });
    }
  });
});

// --- The producer: a test CRD and its controller ----------------------------

const SNIPPET_GROUP = "producers.e2e.stageset.test";
const SNIPPET_API_VERSION = `${SNIPPET_GROUP}/v1`;
const SNIPPET_CRD: KubeObject = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `snippets.${SNIPPET_GROUP}` },
  spec: {
    group: SNIPPET_GROUP,
    scope: "Namespaced",
    names: { plural: "snippets", singular: "snippet", kind: "Snippet", listKind: "SnippetList" },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: { type: "object", properties: { group: { type: "string" }, size: { type: "string" } } },
              status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
            },
          },
        },
      },
    ],
  },
};

type Snippet = KubeObject & { spec: { group: string; size: string }; status?: { observedGeneration?: number; revision?: string } };

/**
 * What JaaS does for a JsonnetSnippet, for a `Snippet`: on every new
 * generation it renders the snippet (here: one Widget of the snippet's
 * group), serves the tarball from its own HTTP server, publishes it as the
 * ExternalArtifact `<name>-rendered` whose spec.sourceRef points back at the
 * Snippet, and records the revision in the Snippet's status.
 */
class SnippetProducer {
  readonly revisions: string[] = [];
  #informer: Informer<Snippet> | undefined;
  #queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: KubeClient,
    private readonly files: ArtifactServer,
    private readonly namespace: string,
  ) {}

  /** The URL of the last artifact it published. */
  lastUrl = "";

  async start(): Promise<void> {
    const informer = new Informer<Snippet>(this.client, { apiVersion: SNIPPET_API_VERSION, kind: "Snippet", namespaces: [this.namespace] });
    const enqueue = (snippet: Snippet) => {
      if (snippet.status?.observedGeneration === snippet.metadata.generation) return;
      this.#queue = this.#queue.then(() => this.#render(snippet)).catch((err: unknown) => console.error("snippet producer:", err));
    };
    informer.addHandlers({ onAdd: enqueue, onUpdate: (_old, snippet) => enqueue(snippet) });
    informer.start();
    this.#informer = informer;
    await informer.waitForSync();
  }

  async stop(): Promise<void> {
    await this.#informer?.stop();
  }

  async #render(snippet: Snippet): Promise<void> {
    const name = snippet.metadata.name!;
    const generation = snippet.metadata.generation!;
    const widget = { apiVersion: `${snippet.spec.group}/v1`, kind: "Widget", metadata: { name }, spec: { size: snippet.spec.size } };
    const artifact = this.files.add(`${this.namespace}-${name}`, { "widgets.yaml": stringify(widget) });
    const revision = `generation-${generation}@${artifact.digest}`;
    await publishExternalArtifact(this.client, this.namespace, `${name}-rendered`, { ...artifact, revision }, {
      sourceRef: { apiVersion: SNIPPET_API_VERSION, kind: "Snippet", name },
    });
    await this.client.patch({ apiVersion: SNIPPET_API_VERSION, kind: "Snippet", namespace: this.namespace, name }, { status: { observedGeneration: generation, revision } }, "merge", {
      subresource: "status",
    });
    this.lastUrl = artifact.url;
    this.revisions.push(revision);
  }
}

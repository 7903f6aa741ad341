// The chart's RBAC is the controller's real RBAC: the chart is installed with
// helm, and the controller binary runs out of cluster with the flags the
// chart's Deployment renders and a TokenRequest token of the chart's
// ServiceAccount — nothing but the chart's grants. With them it rolls out a
// pipeline as a tenant, runs actions as the tenant, is refused what the
// tenant may not do, fails closed on a StageSet without serviceAccountName,
// keeps the webhook's self-signed Secret and caBundle and its Lease, and —
// with controller.watchNamespaces — never touches a namespace outside the
// list, where the API server refuses it as well.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import type { KubeObject, StageSet } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { repoRoot } from "../../src/util/tools.js";
import { ArtifactServer } from "../support/artifact-server.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { publishExternalArtifact } from "../support/flux.js";
import { CHART_DIR, helm, mustFind, renderChart, serviceAccountKubeconfig, setJson, uniqueRelease } from "../support/helm.js";
import { configMapFile, getStageSet, readyCondition, STAGESET, waitForReason } from "../support/pipeline.js";
import { waitFor } from "../support/wait.js";

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  server.close();
  return port;
}

/** Flags the test replaces: the controller listens on loopback ports of this machine instead of the pod's. */
const LOCAL_FLAGS = ["--metrics-bind-address", "--health-probe-bind-address", "--gate-bind-address", "--webhook-port"];

interface Release {
  name: string;
  namespace: string;
  fullname: string;
  objects: KubeObject[];
}

/** `helm install` of the chart; cluster-scoped objects are named after the unique release. */
async function installChart(cluster: TestCluster, namespace: string, values: Record<string, unknown>): Promise<Release> {
  const name = uniqueRelease("rbac");
  const allValues = {
    // The control plane already serves the CRDs (from config/crd, the chart's source too).
    "crds.create": false,
    // The API server cannot reach the webhook of a controller outside the cluster: select no namespace.
    "webhook.namespaceSelector": { matchLabels: { "stageset-test/never": "true" } },
    "resources.ephemeralStorage": "",
    ...values,
  };
  const objects = await renderChart({ release: name, namespace, values: allValues });
  const result = await helm(["install", name, CHART_DIR, "--namespace", namespace, ...setJson(allValues)], { kubeconfig: cluster.kubeconfigPath });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  return { name, namespace, fullname: `${name}-stageset-controller`, objects };
}

async function uninstallChart(cluster: TestCluster, release: Release): Promise<void> {
  const result = await helm(["uninstall", release.name, "--namespace", release.namespace, "--wait"], { kubeconfig: cluster.kubeconfigPath });
  assert.equal(result.code, 0, result.stdout + result.stderr);
}

interface RunningController {
  child: ChildProcess;
  healthPort: number;
  metricsPort: number;
  logs(): string;
  stop(): Promise<void>;
}

/**
 * The controller binary with the args of the release's Deployment (bind
 * addresses moved to free loopback ports, `extraArgs` appended), the
 * kubeconfig of the release's ServiceAccount and POD_NAMESPACE as the
 * Deployment sets it.
 */
async function runController(cluster: TestCluster, release: Release, dir: string, extraArgs: string[] = []): Promise<RunningController> {
  const deployment = mustFind(release.objects, "Deployment");
  const container = (deployment.spec as { template: { spec: { containers: { args: string[] }[]; serviceAccountName: string } } }).template.spec;
  const kubeconfig = await serviceAccountKubeconfig(cluster, release.namespace, container.serviceAccountName, dir);
  const healthPort = await freePort();
  const metricsPort = await freePort();
  const webhookPort = await freePort();
  const args = [
    ...container.containers[0]!.args.filter((arg) => !LOCAL_FLAGS.some((flag) => arg.startsWith(`${flag}=`))),
    `--metrics-bind-address=127.0.0.1:${metricsPort}`,
    `--health-probe-bind-address=127.0.0.1:${healthPort}`,
    "--gate-bind-address=127.0.0.1:0",
    `--webhook-port=${webhookPort}`,
    `--kubeconfig=${kubeconfig}`,
    ...extraArgs,
  ];
  const child = spawn(process.execPath, [join(repoRoot(), "dist", "src", "main.js"), ...args], {
    env: { ...process.env, KUBECONFIG: "/nonexistent", POD_NAMESPACE: release.namespace },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const running: RunningController = {
    child,
    healthPort,
    metricsPort,
    logs: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
  await waitFor(
    async () => {
      try {
        return (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200;
      } catch {
        return false;
      }
    },
    { description: "the controller's /readyz (caches synced, webhook certificate ready)", timeoutMs: 60_000, abortIf: () => (child.exitCode !== null ? `exited ${child.exitCode}: ${output.slice(-2000)}` : undefined) },
  );
  return running;
}

/** A tenant ServiceAccount `deployer` with the built-in `edit` role in its namespace only. */
async function createTenant(client: KubeClient, namespace: string): Promise<void> {
  await client.create({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "deployer", namespace } });
  await client.create({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: "deployer-edit", namespace },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "edit" },
    subjects: [{ kind: "ServiceAccount", name: "deployer", namespace }],
  } as KubeObject);
}

/** A loopback HTTP endpoint counting the requests of http actions. */
async function hookServer(): Promise<{ server: Server; port: number; hits: string[] }> {
  const hits: string[] = [];
  const server = createHttpServer((req, res) => {
    hits.push(req.url ?? "");
    req.resume();
    res.writeHead(200).end("ok");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as AddressInfo).port, hits };
}

function jobManifest(name: string): string {
  return `apiVersion: batch/v1
kind: Job
metadata: {name: ${name}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: registry.invalid/${name}:1}]
`;
}

describe("the chart's RBAC, used by the controller binary", { concurrency: true }, () => {
  let cluster: TestCluster;
  let admin: KubeClient;
  const artifacts = new ArtifactServer();
  let dir: string;
  before(async () => {
    cluster = await testCluster();
    admin = KubeClient.fromKubeConfig(cluster.kubeConfig);
    await artifacts.start();
    dir = mkdtempSync(join(tmpdir(), "stageset-chart-rbac-"));
  });
  after(async () => {
    await artifacts.stop();
    admin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("default RBAC (cluster-wide binding): pipeline and actions as the tenant, tenant limits enforced, no serviceAccountName fails closed, webhook Secret, caBundle and Lease kept", async () => {
    const releaseNamespace = await createTestNamespace(cluster, "chart-rbac-system");
    const tenant = await createTestNamespace(cluster, "chart-rbac-tenant");
    const hooks = await hookServer();
    // The hook server's address reaches --allowed-action-hosts through the chart's value.
    const release = await installChart(cluster, releaseNamespace, { "controller.allowedActionHosts": [`127.0.0.1:${hooks.port}`] });
    let controller: RunningController | undefined;
    try {
      await createTenant(admin, tenant);
      await publishExternalArtifact(admin, tenant, "app", artifacts.add(`${tenant}-app`, configMapFile("app", { v: "1" }), "r1"));
      await publishExternalArtifact(admin, tenant, "migrations", artifacts.add(`${tenant}-migrations`, { "job.yaml": jobManifest("migrate") }, "m1"));
      await publishExternalArtifact(
        admin,
        tenant,
        "escalate",
        artifacts.add(`${tenant}-escalate`, { "role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: stageset-chart-rbac-escalation}\nrules: []\n" }, "e1"),
      );
      // The chart's RBAC is cluster-wide; only the watch scope is narrowed, so this controller leaves the other tests' StageSets alone.
      controller = await runController(cluster, release, dir, [`--watch-namespaces=${tenant}`]);

      // Pipeline with actions, as the tenant: pre Job, apply, post http.
      await admin.create({
        ...STAGESET,
        metadata: { name: "web", namespace: tenant },
        spec: {
          serviceAccountName: "deployer",
          stages: [
            {
              name: "app",
              sourceRef: { name: "app" },
              actions: {
                pre: [{ name: "migrate", job: { sourceRef: { name: "migrations" } } }],
                post: [{ name: "notify", http: { url: `http://127.0.0.1:${hooks.port}/${tenant}/notify` } }],
              },
            },
          ],
        },
      } as KubeObject);
      const web = await waitForReason(admin, tenant, "web", "Succeeded", 120_000);
      assert.deepEqual(web.status?.stages?.[0]?.executedActions, ["pre/migrate", "post/notify"]);
      assert.ok(await admin.get({ apiVersion: "v1", kind: "ConfigMap", namespace: tenant, name: "app" }), "the stage's ConfigMap was applied");
      assert.equal((await admin.list("batch/v1", "Job", { namespace: tenant })).items.length, 1, "the pre Job ran as the tenant");
      assert.equal(hooks.hits.filter((h) => h === `/${tenant}/notify`).length, 1, "the post action called once");
      const inventories = await admin.list("stages.metio.wtf/v1", "StageInventory", { namespace: tenant });
      assert.equal(inventories.items.length, 1, "the controller wrote the stage's inventory");

      // The tenant's limits hold: a cluster-scoped object is refused as the tenant, and nothing is created.
      await admin.create({ ...STAGESET, metadata: { name: "escalate", namespace: tenant }, spec: { serviceAccountName: "deployer", stages: [{ name: "rbac", sourceRef: { name: "escalate" } }] } } as KubeObject);
      const escalated = await waitForReason(admin, tenant, "escalate", "RBACDenied", 60_000);
      assert.match(readyCondition(escalated)?.message ?? "", /stageset-chart-rbac-escalation|ClusterRole/);
      assert.equal(await admin.get({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: "stageset-chart-rbac-escalation" }), undefined);

      // No serviceAccountName with rbac.clusterAdmin false: the controller's own identity may not write, the run fails closed.
      await admin.create({ ...STAGESET, metadata: { name: "anonymous", namespace: tenant }, spec: { stages: [{ name: "app", sourceRef: { name: "app" } }] } } as KubeObject);
      const anonymous = await waitForReason(admin, tenant, "anonymous", "RBACDenied", 60_000);
      assert.match(readyCondition(anonymous)?.message ?? "", /forbidden|denied|RBAC/i);
      assert.match(readyCondition(anonymous)?.message ?? "", /\(runbook: https:\/\/stageset\.projects\.metio\.wtf\/runbooks\/rbacdenied\/\)$/, "the chart's runbook base reaches the message");

      // Events are written with the controller's identity (asynchronously, after the status).
      await waitFor(
        async () => {
          const events = await admin.list<KubeObject & { type?: string; involvedObject?: { name?: string } }>("v1", "Event", { namespace: tenant });
          return events.items.some((e) => e.type === "Warning" && e.involvedObject?.name === "anonymous");
        },
        { description: "a Warning event on StageSet anonymous", timeoutMs: 15_000 },
      );

      // Self-signed webhook: the Secret in the release namespace and the caBundle of the release's configuration.
      const secret = await waitFor(() => admin.get({ apiVersion: "v1", kind: "Secret", namespace: releaseNamespace, name: `${release.fullname}-webhook-self-signed-tls` }), {
        description: "the webhook's self-signed Secret",
        timeoutMs: 30_000,
      });
      assert.equal(secret.type, "kubernetes.io/tls");
      const vwc = await waitFor(
        async () => {
          const live = (await admin.get({ apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingWebhookConfiguration", name: release.fullname })) as unknown as { webhooks: { clientConfig: { caBundle?: string } }[] } | undefined;
          return live?.webhooks[0]?.clientConfig.caBundle ? live : undefined;
        },
        { description: "the caBundle patched into the release's ValidatingWebhookConfiguration", timeoutMs: 30_000 },
      );
      assert.match(Buffer.from(vwc.webhooks[0]!.clientConfig.caBundle!, "base64").toString("utf8"), /BEGIN CERTIFICATE/);
      const lease = await admin.get({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace: releaseNamespace, name: "stageset-controller.stages.metio.wtf" });
      assert.ok(lease, "the leader-election Lease in the release namespace");

      // The metrics the alerts read, scraped from the running controller under their real names.
      const scrape = await (await fetch(`http://127.0.0.1:${controller.metricsPort}/metrics`)).text();
      for (const series of [
        `stageset_reconcile_total{namespace="${tenant}",name="web",reason="Succeeded"}`,
        `stageset_reconcile_total{namespace="${tenant}",name="anonymous",reason="RBACDenied"}`,
        'workqueue_depth{name="stageset"',
        'controller_runtime_reconcile_time_seconds_bucket{le="+Inf",controller="stageset"}',
        "stageset_webhook_cert_renewal_failures_total ",
      ]) {
        assert.ok(scrape.includes(series), `the scrape has ${series}`);
      }
      assert.ok(!/Forbidden|forbidden/.test(controller.logs().split("\n").filter((l) => !l.includes("RBACDenied") && !l.includes('"stageset"')).join("\n")), `no other request of the controller was forbidden:\n${controller.logs().slice(-3000)}`);
    } finally {
      await controller?.stop();
      hooks.server.close();
      await uninstallChart(cluster, release);
    }
  });

  test("watchNamespaces: RoleBindings only in the listed namespaces; outside them the StageSet is never touched and the API server refuses the controller", async () => {
    const releaseNamespace = await createTestNamespace(cluster, "chart-scoped-system");
    const inside = await createTestNamespace(cluster, "chart-scoped-in");
    const outside = await createTestNamespace(cluster, "chart-scoped-out");
    const release = await installChart(cluster, releaseNamespace, { "controller.watchNamespaces": [inside] });
    let controller: RunningController | undefined;
    try {
      for (const namespace of [inside, outside]) {
        await createTenant(admin, namespace);
        await publishExternalArtifact(admin, namespace, "app", artifacts.add(`${namespace}-app`, configMapFile("app", { v: "1" }), "r1"));
      }
      // The StageSet outside the list exists first, so a controller that watched it would reach it before the one inside.
      await admin.create({ ...STAGESET, metadata: { name: "outside", namespace: outside }, spec: { serviceAccountName: "deployer", stages: [{ name: "app", sourceRef: { name: "app" } }] } } as KubeObject);
      controller = await runController(cluster, release, dir);
      await admin.create({ ...STAGESET, metadata: { name: "inside", namespace: inside }, spec: { serviceAccountName: "deployer", stages: [{ name: "app", sourceRef: { name: "app" } }] } } as KubeObject);
      await waitForReason(admin, inside, "inside", "Succeeded", 90_000);

      const untouched = (await getStageSet(admin, outside, "outside")) as StageSet;
      assert.equal(untouched.status, undefined, "no status written outside the watched namespaces");
      assert.deepEqual(untouched.metadata.finalizers ?? [], [], "no finalizer added outside the watched namespaces");
      assert.equal(await admin.get({ apiVersion: "v1", kind: "ConfigMap", namespace: outside, name: "app" }), undefined);

      // The API server refuses the controller's identity there: reading StageSets, writing status, impersonating the tenant.
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromFile(await serviceAccountKubeconfig(cluster, releaseNamespace, release.fullname, dir));
      const asController = KubeClient.fromKubeConfig(kubeConfig);
      try {
        await assert.rejects(asController.list("stages.metio.wtf/v1", "StageSet", { namespace: outside }), /forbidden/i);
        await assert.rejects(asController.patch({ ...STAGESET, namespace: outside, name: "outside" }, { status: { observedGeneration: 1 } }, "merge", { subresource: "status" }), /forbidden/i);
        await assert.rejects(asController.asServiceAccount(outside, "deployer").list("v1", "ConfigMap", { namespace: outside }), /forbidden|impersonate/i);
        // …and allows it inside.
        assert.ok((await asController.list("stages.metio.wtf/v1", "StageSet", { namespace: inside })).items.length === 1);
        assert.ok(await asController.asServiceAccount(inside, "deployer").get({ apiVersion: "v1", kind: "ConfigMap", namespace: inside, name: "app" }));
      } finally {
        asController.close();
      }
    } finally {
      await controller?.stop();
      await uninstallChart(cluster, release);
    }
  });
});

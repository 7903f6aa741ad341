// The Helm chart against the local control plane: every object helm template
// renders, for the default values and each reference setup, passes the API
// server's own validation (server-side dry-run apply: OpenAPI schema, unknown
// fields, CRD schemas of the prometheus-operator and cert-manager kinds), and
// `helm install` brings the controller up on kwok with every object present
// and the webhook configuration, Services and Deployment wired to each other.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { helm, installChartTestCrds, mustFind, renderChart, setJson, CHART_DIR, uniqueRelease, VALUES_FILES, findObject } from "../support/helm.js";
import { waitFor } from "../support/wait.js";

const FIELD_MANAGER = "stageset-chart-tests";

/** Install order for the dry-run: CRDs, then Namespaces, then the rest as rendered. */
function installOrder(objects: KubeObject[]): KubeObject[] {
  const rank = (o: KubeObject) => (o.kind === "CustomResourceDefinition" ? 0 : o.kind === "Namespace" ? 1 : 2);
  return [...objects].sort((a, b) => rank(a) - rank(b));
}

describe("chart on the control plane", { concurrency: true }, () => {
  let cluster: TestCluster;
  let client: KubeClient;
  before(async () => {
    cluster = await testCluster();
    client = KubeClient.fromKubeConfig(cluster.kubeConfig);
    await installChartTestCrds(client);
  });
  after(() => client.close());

  for (const file of [undefined, ...VALUES_FILES]) {
    const label = file ? file.slice(file.lastIndexOf("/") + 1) : "default values";
    test(`server-side dry-run of every rendered object: ${label}`, async () => {
      const namespace = await createTestNamespace(cluster, "chart-dry-run");
      // namespace.create renders the release namespace itself; the test namespace stands in for it.
      const objects = await renderChart({ release: uniqueRelease("dry"), namespace, ...(file ? { valuesFiles: [file] } : {}) });
      const refused: string[] = [];
      for (const obj of installOrder(objects)) {
        // RoleBindings for controller.watchNamespaces go to namespaces that do not exist here: validated in the test namespace.
        const target = obj.metadata.namespace && obj.metadata.namespace !== namespace ? { ...obj, metadata: { ...obj.metadata, namespace } } : obj;
        try {
          await client.apply(target, { fieldManager: FIELD_MANAGER, force: true, dryRun: true });
        } catch (err) {
          refused.push(`${obj.kind}/${obj.metadata.name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      assert.deepEqual(refused, [], "the API server refused rendered objects");
      assert.ok(objects.length >= 14, `${objects.length} objects validated`);
    });
  }

  test("the dry-run refuses what the API server would refuse (an unknown field, a wrong type)", async () => {
    const namespace = await createTestNamespace(cluster, "chart-dry-run-neg");
    const objects = await renderChart({ release: uniqueRelease("neg"), namespace, values: { "metrics.serviceMonitor.enabled": true } });
    const deployment = mustFind(objects, "Deployment");
    const monitor = mustFind(objects, "ServiceMonitor");
    const broken = [
      { ...deployment, spec: { ...(deployment.spec as object), replicas: "two" } },
      { ...monitor, spec: { ...(monitor.spec as object), scrapeEverything: true } },
    ];
    for (const obj of broken) {
      await assert.rejects(client.apply(obj as KubeObject, { fieldManager: FIELD_MANAGER, force: true, dryRun: true }), `${obj.kind} should be refused`);
    }
  });

  test("helm install: the controller becomes Available on kwok in its restricted namespace, every object is there and wired; uninstall removes the cluster-scoped objects and keeps the namespace", async () => {
    const namespace = await createTestNamespace(cluster, "chart-install");
    const release = uniqueRelease("ssc");
    const fullname = `${release}-stageset-controller`;
    const values = {
      // The control plane already serves the CRDs (from config/crd, the same source); helm must not take them over from the other tests.
      "crds.create": false,
      // The webhook's pod is a kwok pod nobody can call: only this namespace's StageSets would go to it, and the test creates none.
      "webhook.namespaceSelector": { matchLabels: { "kubernetes.io/metadata.name": namespace } },
      "namespace.create": true,
      "namespace.pssLevel": "restricted",
      "metrics.serviceMonitor.enabled": true,
      "metrics.prometheusRule.enabled": true,
      "networkPolicy.enabled": true,
      // kwok's fake node reports no ephemeral storage: a pod requesting some would never be scheduled.
      "resources.ephemeralStorage": "",
    };
    const rendered = await renderChart({ release, namespace, values });
    // The namespace exists (as after --create-namespace); the release takes it over to label it.
    const install = await helm(["install", release, CHART_DIR, "--namespace", namespace, "--take-ownership", ...setJson(values)], { kubeconfig: cluster.kubeconfigPath });
    assert.equal(install.code, 0, install.stdout + install.stderr);
    try {
      for (const obj of rendered) {
        const live = await client.get({ apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name ?? "", ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}) });
        assert.ok(live, `${obj.kind}/${obj.metadata.name} was installed`);
        assert.equal(live.metadata.annotations?.["meta.helm.sh/release-name"], release, `${obj.kind}/${obj.metadata.name} belongs to the release`);
      }
      const ns = await client.get({ apiVersion: "v1", kind: "Namespace", name: namespace });
      assert.equal(ns?.metadata.labels?.["pod-security.kubernetes.io/enforce"], "restricted");

      // kwok runs the pod: the Deployment becomes Available, so the hardened pod passed the restricted Pod Security Standard.
      await waitFor(
        async () => {
          const deployment = await client.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>({ apiVersion: "apps/v1", kind: "Deployment", namespace, name: fullname });
          return deployment?.status?.conditions?.some((c) => c.type === "Available" && c.status === "True");
        },
        { description: `Deployment ${fullname} Available`, timeoutMs: 120_000, intervalMs: 500 },
      );

      // Wiring: the webhook configuration calls the webhook Service, which selects the controller's pod on its webhook port.
      const vwc = (await client.get({ apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingWebhookConfiguration", name: fullname })) as unknown as {
        webhooks: { clientConfig: { service: { name: string; namespace: string; port: number; path: string } } }[];
      };
      const ref = vwc.webhooks[0]!.clientConfig.service;
      assert.equal(ref.namespace, namespace);
      assert.equal(ref.path, "/validate-stages-metio-wtf-v1-stageset");
      const deployment = mustFind(rendered, "Deployment");
      const pod = (deployment.spec as { template: { metadata: { labels: Record<string, string> }; spec: { containers: { args: string[]; ports: { name: string; containerPort: number }[] }[] } } }).template;
      const container = pod.spec.containers[0]!;
      const containerPort = (name: string) => container.ports.find((p) => p.name === name)?.containerPort;
      const flag = (name: string) => container.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
      const services = new Map<string, { port: string; flagPort: string | undefined }>([
        [ref.name, { port: "webhook", flagPort: flag("webhook-port") }],
        [`${fullname}-metrics`, { port: "metrics", flagPort: flag("metrics-bind-address")?.replace(/^:/, "") }],
        [`${fullname}-gate`, { port: "gate", flagPort: flag("gate-bind-address")?.replace(/^:/, "") }],
      ]);
      for (const [name, expected] of services) {
        const service = await client.get<KubeObject & { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] } }>({ apiVersion: "v1", kind: "Service", namespace, name });
        assert.ok(service, `Service ${name}`);
        for (const [key, value] of Object.entries(service.spec.selector)) assert.equal(pod.metadata.labels[key], value, `${name} selects the controller's pods`);
        const port = service.spec.ports[0]!;
        if (name === ref.name) assert.equal(port.port, ref.port, "the webhook configuration calls the Service's port");
        assert.equal(port.targetPort, expected.port);
        assert.equal(String(containerPort(expected.port)), expected.flagPort, `${name}: the container port is the port the controller listens on`);
        // The endpoint controller resolved the Service to the running pod on that port.
        await waitFor(
          async () => {
            const slices = await client.list<KubeObject & { endpoints?: unknown[]; ports?: { port: number }[] }>("discovery.k8s.io/v1", "EndpointSlice", { namespace, labelSelector: `kubernetes.io/service-name=${name}` });
            return slices.items.some((s) => (s.endpoints?.length ?? 0) > 0 && s.ports?.some((p) => p.port === containerPort(expected.port)));
          },
          { description: `EndpointSlice of ${name} with the pod on port ${containerPort(expected.port)}`, timeoutMs: 60_000, intervalMs: 500 },
        );
      }
      const monitor = findObject(rendered, "ServiceMonitor")!;
      assert.deepEqual((monitor.spec as { endpoints: { port: string }[] }).endpoints.map((e) => e.port), ["metrics"]);
    } finally {
      const uninstall = await helm(["uninstall", release, "--namespace", namespace, "--wait"], { kubeconfig: cluster.kubeconfigPath });
      assert.equal(uninstall.code, 0, uninstall.stdout + uninstall.stderr);
    }
    assert.equal(await client.get({ apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingWebhookConfiguration", name: fullname }), undefined, "the cluster-scoped objects went with the release");
    assert.equal(await client.get({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: fullname }), undefined);
    assert.ok(await client.get({ apiVersion: "v1", kind: "Namespace", name: namespace }), "the namespace is kept (helm.sh/resource-policy: keep)");
  });
});

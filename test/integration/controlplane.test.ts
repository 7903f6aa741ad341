// The local control plane behaves like a real cluster where the controller
// depends on it: workloads become Available and Jobs complete (kwok plays the
// kubelet), and RBAC applies to service-account tokens.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  ApiException,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1Condition,
  type V1DeploymentCondition,
  type V1JobCondition,
} from "@kubernetes/client-node";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { waitFor } from "../support/wait.js";

const WORKLOAD_TIMEOUT_MS = 60_000;

type AnyCondition = V1Condition | V1DeploymentCondition | V1JobCondition;
const conditionTrue = (conditions: AnyCondition[] | undefined, type: string): boolean =>
  conditions?.some((c) => c.type === type && c.status === "True") ?? false;

/** A kubeconfig for the same API server that authenticates with a bearer token only. */
function tokenKubeConfig(admin: KubeConfig, token: string): KubeConfig {
  const cluster = admin.getCurrentCluster();
  assert.ok(cluster, "the admin kubeconfig names a cluster");
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromClusterAndUser(cluster, { name: "service-account", token });
  return kubeConfig;
}

async function apiStatus(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call;
    return { code: 200, message: "" };
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const body = typeof err.body === "string" ? err.body : JSON.stringify(err.body);
    return { code: err.code, message: body };
  }
}

describe("local control plane", { concurrency: true }, () => {
  let cluster: TestCluster;

  test("a Deployment becomes Available on kwok nodes", async () => {
    cluster = await testCluster();
    const namespace = await createTestNamespace(cluster, "cp-deployment");
    const apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    const labels = { app: "web" };
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: "web" },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name: "web", image: "registry.invalid/app:1" }] },
          },
        },
      },
    });

    let last = "";
    const deployment = await waitFor(
      async () => {
        const live = await apps.readNamespacedDeployment({ name: "web", namespace });
        last = JSON.stringify(live.status);
        return live.status?.availableReplicas === 2 && conditionTrue(live.status.conditions, "Available") && live;
      },
      { description: `Deployment ${namespace}/web Available with 2 replicas`, timeoutMs: WORKLOAD_TIMEOUT_MS },
    ).catch(async (err: Error) => assert.fail(`${err.message}; last status: ${last}; ${await diagnose(cluster, namespace)}`));
    assert.equal(deployment.status?.readyReplicas, 2);

    const pods = await cluster.kubeConfig
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace, labelSelector: "app=web" });
    assert.equal(pods.items.length, 2);
    for (const pod of pods.items) {
      assert.match(pod.spec?.nodeName ?? "", /^kwok-node-/, `pod ${pod.metadata?.name} is scheduled on a kwok node`);
      assert.equal(pod.status?.phase, "Running");
    }
  });

  test("a Job completes", async () => {
    cluster = await testCluster();
    const namespace = await createTestNamespace(cluster, "cp-job");
    const batch = cluster.kubeConfig.makeApiClient(BatchV1Api);
    await batch.createNamespacedJob({
      namespace,
      body: {
        metadata: { name: "migrate" },
        spec: {
          backoffLimit: 0,
          template: {
            spec: { restartPolicy: "Never", containers: [{ name: "migrate", image: "registry.invalid/migrate:1" }] },
          },
        },
      },
    });

    let last = "";
    const job = await waitFor(
      async () => {
        const live = await batch.readNamespacedJob({ name: "migrate", namespace });
        last = JSON.stringify(live.status);
        return conditionTrue(live.status?.conditions, "Complete") && live;
      },
      { description: `Job ${namespace}/migrate Complete`, timeoutMs: WORKLOAD_TIMEOUT_MS },
    ).catch((err: Error) => assert.fail(`${err.message}; last status: ${last}`));
    assert.equal(job.status?.succeeded, 1);
    assert.equal(conditionTrue(job.status?.conditions, "Failed"), false);
  });

  test("RBAC applies to service-account tokens from the TokenRequest API", async () => {
    cluster = await testCluster();
    const namespace = await createTestNamespace(cluster, "cp-rbac");
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: "nobody" } } });
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: "nobody",
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tokenRequest.status?.token;
    assert.ok(token, "the TokenRequest API returned a token");
    const asServiceAccount = tokenKubeConfig(cluster.kubeConfig, token).makeApiClient(CoreV1Api);

    const denied = await apiStatus(asServiceAccount.listNamespacedSecret({ namespace }));
    assert.equal(denied.code, 403, `listing secrets without a binding is Forbidden, got ${denied.code}`);
    // The token authenticated; the authorizer said no.
    assert.match(denied.message, new RegExp(`system:serviceaccount:${namespace}:nobody`));

    const rbac = cluster.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: "read-secrets" },
        rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["list"] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: "nobody-reads-secrets" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "read-secrets" },
        subjects: [{ kind: "ServiceAccount", name: "nobody", namespace }],
      },
    });
    await waitFor(async () => (await apiStatus(asServiceAccount.listNamespacedSecret({ namespace }))).code === 200, {
      description: "the RoleBinding to allow listing secrets",
      timeoutMs: 10_000,
    });
    const otherNamespace = await apiStatus(asServiceAccount.listNamespacedSecret({ namespace: "default" }));
    assert.equal(otherNamespace.code, 403, "the Role grants nothing outside its namespace");
  });
});

/** What the namespace's ReplicaSets, Pods and Events say, for a failure message. */
async function diagnose(cluster: TestCluster, namespace: string): Promise<string> {
  try {
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    const replicaSets = await apps.listNamespacedReplicaSet({ namespace });
    const pods = await core.listNamespacedPod({ namespace });
    const events = await core.listNamespacedEvent({ namespace });
    return [
      `replicasets: ${replicaSets.items.map((r) => `${r.metadata?.name} ${JSON.stringify(r.status)}`).join("; ")}`,
      `pods: ${pods.items.map((p) => `${p.metadata?.name} ${p.spec?.nodeName ?? "-"} ${p.status?.phase}`).join("; ")}`,
      `events: ${events.items.map((e) => `${e.involvedObject.kind}/${e.involvedObject.name} ${e.reason}: ${e.message}`).join("; ")}`,
    ].join("\n");
  } catch (err) {
    return `diagnosis failed: ${String(err)}`;
  }
}

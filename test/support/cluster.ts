import { randomBytes } from "node:crypto";
import { ApiException, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane } from "./controlplane/controlplane.js";
import { waitFor } from "./wait.js";

export interface TestCluster {
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
}

/** Set by scripts/run-tests.mjs to the admin kubeconfig of the run's shared control plane. */
export const TEST_KUBECONFIG_ENV = "STAGESET_TEST_KUBECONFIG";
export const TEST_NAMESPACE_LABEL = "stageset-test";

let shared: Promise<TestCluster> | undefined;

/**
 * The run's shared control plane. Under scripts/run-tests.mjs it connects to the
 * one named by STAGESET_TEST_KUBECONFIG; run on its own (`node --test file`), it
 * starts a control plane for this process and stops it when the process exits.
 */
export function testCluster(): Promise<TestCluster> {
  shared ??= connect();
  return shared;
}

async function connect(): Promise<TestCluster> {
  const kubeconfigPath = process.env[TEST_KUBECONFIG_ENV];
  if (kubeconfigPath) {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    return { kubeconfigPath, kubeConfig };
  }
  const controlPlane = await startControlPlane({
    log: (line) => process.stderr.write(`[controlplane] ${line}\n`),
  });
  stopOnExit(controlPlane);
  return { kubeconfigPath: controlPlane.kubeconfigPath, kubeConfig: controlPlane.kubeConfig };
}

function stopOnExit(controlPlane: ControlPlane): void {
  controlPlane.unref();
  process.once("exit", () => controlPlane.stopSync());
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      controlPlane.stopSync();
      process.kill(process.pid, signal);
    });
  }
}

/** A DNS-1123 label: `<prefix>-<random>`, at most 63 characters. */
function namespaceName(prefix: string): string {
  const cleaned = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 50)
    .replace(/-+$/, "");
  return `${cleaned || "test"}-${randomBytes(4).toString("hex")}`;
}

/**
 * Creates a namespace of its own for one test, labelled `stageset-test=true`,
 * and waits for its `default` ServiceAccount so Pods can be created at once.
 */
export async function createTestNamespace(cluster: TestCluster, prefix: string): Promise<string> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const name = namespaceName(prefix);
  await core.createNamespace({ body: { metadata: { name, labels: { [TEST_NAMESPACE_LABEL]: "true" } } } });
  await waitFor(
    async () => {
      try {
        await core.readNamespacedServiceAccount({ name: "default", namespace: name });
        return true;
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return false;
        throw err;
      }
    },
    { description: `ServiceAccount default in test namespace ${name}`, timeoutMs: 30_000, intervalMs: 50 },
  );
  return name;
}

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "../../src/api/types.js";
import type { KubeClient } from "../../src/kube/client.js";
import { repoRoot, toolPath } from "../../src/util/tools.js";
import type { TestCluster } from "./cluster.js";
import { waitFor } from "./wait.js";

/** The chart under test. */
export const CHART_DIR = join(repoRoot(), "charts", "stageset-controller");

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

// helm's config, cache and data go to a directory of this process, so parallel test files never share a lock.
let helmHome: string | undefined;
function helmEnv(kubeconfig?: string): NodeJS.ProcessEnv {
  helmHome ??= mkdtempSync(join(tmpdir(), "stageset-helm-"));
  for (const dir of ["config", "cache", "data"]) mkdirSync(join(helmHome, dir), { recursive: true });
  return {
    ...process.env,
    HELM_CONFIG_HOME: join(helmHome, "config"),
    HELM_CACHE_HOME: join(helmHome, "cache"),
    HELM_DATA_HOME: join(helmHome, "data"),
    ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}),
  };
}

/** Runs a binary to completion; never rejects for a non-zero exit (the caller asserts on it). */
export function run(binary: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${binary}: ${err.message} (run hack/tools.sh)`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `helm <args>`; with `kubeconfig`, against that cluster. */
export function helm(args: string[], options: { kubeconfig?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(toolPath("helm"), args, { env: helmEnv(options.kubeconfig), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
}

/** Values as repeated `--set-json key=<json>` flags (exact types, no string coercion). */
export function setJson(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([key, value]) => ["--set-json", `${key}=${JSON.stringify(value)}`]);
}

export interface RenderOptions {
  release: string;
  namespace: string;
  /** Values files (paths). */
  valuesFiles?: string[];
  /** Values by dotted key. */
  values?: Record<string, unknown>;
}

export function templateArgs(options: RenderOptions): string[] {
  return [
    options.release,
    CHART_DIR,
    "--namespace",
    options.namespace,
    ...(options.valuesFiles ?? []).flatMap((file) => ["--values", file]),
    ...setJson(options.values ?? {}),
  ];
}

/** `helm template`: the rendered objects, in helm's install order. Throws with helm's message when it fails. */
export async function renderChart(options: RenderOptions): Promise<KubeObject[]> {
  const result = await helm(["template", ...templateArgs(options)]);
  if (result.code !== 0) throw new Error(`helm template failed (${result.code}): ${result.stderr}`);
  return parseObjects(result.stdout);
}

/** Every non-empty YAML document of a multi-document stream. */
export function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`invalid YAML from helm: ${doc.errors[0]!.message}`);
      return doc.toJS() as KubeObject | null;
    })
    .filter((obj): obj is KubeObject => obj !== null && typeof obj === "object");
}

export function findObject(objects: KubeObject[], kind: string, name?: string): KubeObject | undefined {
  return objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

export function mustFind(objects: KubeObject[], kind: string, name?: string): KubeObject {
  const found = findObject(objects, kind, name);
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ""} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`);
  return found;
}

/** The reference setups of the Production guide and the other example values (charts/stageset-controller/ci/). */
export const VALUES_FILES = ["onprem-values.yaml", "eks-values.yaml", "flux-values.yaml", "jaas-values.yaml", "everything-values.yaml"].map((name) =>
  join(CHART_DIR, "ci", name),
);

/** The third-party CRDs the chart's optional objects need (hack/chart-test-crds.sh). */
export const CHART_TEST_CRD_DIR = join(repoRoot(), ".tools", "crds", "chart-test");

/**
 * Installs the ServiceMonitor, PrometheusRule, Certificate and Issuer CRDs
 * (server-side apply, idempotent: parallel test files may do it at once) and
 * waits until the API server serves them.
 */
export async function installChartTestCrds(client: KubeClient): Promise<void> {
  if (!existsSync(CHART_TEST_CRD_DIR)) throw new Error(`${CHART_TEST_CRD_DIR} is missing: run hack/tools.sh (hack/chart-test-crds.sh)`);
  const files = readdirSync(CHART_TEST_CRD_DIR).filter((name) => name.endsWith(".yaml"));
  const crds = files.flatMap((name) => parseObjects(readFileSync(join(CHART_TEST_CRD_DIR, name), "utf8")));
  await Promise.all(crds.map((crd) => client.apply(crd, { fieldManager: "stageset-chart-tests", force: true })));
  for (const crd of crds) {
    await waitFor(
      async () => {
        const live = await client.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>({ apiVersion: crd.apiVersion, kind: crd.kind, name: crd.metadata.name ?? "" });
        return live?.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
      },
      { description: `CRD ${crd.metadata.name} Established`, timeoutMs: 30_000 },
    );
  }
}

/** A short random suffix for release names (cluster-scoped objects are named after the release). */
export function uniqueRelease(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString("hex")}`;
}

/**
 * A kubeconfig file for ServiceAccount `namespace/name` of the cluster, with a
 * token from the TokenRequest API (what a pod's projected token is): requests
 * made with it have exactly that account's rights.
 */
export async function serviceAccountKubeconfig(cluster: TestCluster, namespace: string, name: string, dir: string): Promise<string> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const request = await core.createNamespacedServiceAccountToken({ name, namespace, body: { spec: { expirationSeconds: 3600, audiences: [] } } });
  const token = request.status?.token;
  if (!token) throw new Error(`no token issued for ServiceAccount ${namespace}/${name}`);
  const admin = cluster.kubeConfig.getCurrentCluster();
  if (!admin) throw new Error("the admin kubeconfig has no current cluster");
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ ...admin, name: "test" }],
    users: [{ name: `${namespace}-${name}`, token }],
    contexts: [{ name: "sa", cluster: "test", user: `${namespace}-${name}` }],
    currentContext: "sa",
  });
  const path = join(dir, `${namespace}-${name}.kubeconfig`);
  writeFileSync(path, kubeConfig.exportConfig(), { mode: 0o600 });
  return path;
}

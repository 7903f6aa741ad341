import { accessSync, constants, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { repoRoot, toolPath } from "../../../src/util/tools.js";
import { waitFor } from "../wait.js";
import { createFakeNodes, installCrds, listManifestFiles, waitForDefaultServiceAccount } from "./bootstrap.js";
import { Component, type ComponentSpec } from "./component.js";
import { ControlPlaneError } from "./errors.js";
import { probeHealth } from "./health.js";
import { renderKubeconfig } from "./kubeconfig.js";
import { API_SERVER_DNS_NAMES, createPki } from "./pki.js";
import { freePorts } from "./ports.js";
import { startWatchdog } from "./watchdog.js";

export interface ControlPlaneOptions {
  /** Where data, certificates and component logs go; must be absent or empty. Default: a new temp dir. */
  readonly dataDir?: string;
  /** Also write the admin kubeconfig here (it is always at `<dataDir>/admin.kubeconfig`). */
  readonly kubeconfigPath?: string;
  /** Fake kwok nodes to create. Default 1. */
  readonly nodes?: number;
  /** CRD files or directories of them. Default: `config/crd/` and `.tools/crds/flux/` of the repository. */
  readonly crdPaths?: readonly string[];
  /** Upper bound for the whole start. Default 120s (a cold start on two cores takes ~10s). */
  readonly startTimeoutMs?: number;
  /** Progress lines ("apiserver ready after 4.1s"); default silent. */
  readonly log?: (line: string) => void;
}

export interface ControlPlane {
  readonly dataDir: string;
  /** The admin kubeconfig (user `admin`, group `system:masters`). */
  readonly kubeconfigPath: string;
  readonly kubeConfig: KubeConfig;
  /** https://127.0.0.1:<port> */
  readonly server: string;
  readonly nodeNames: readonly string[];
  readonly crdNames: readonly string[];
  readonly startupMs: number;
  readonly components: readonly Component[];
  /** A component that exited on its own, described, or undefined while all run. */
  failedComponent(): string | undefined;
  /** Stops every component (SIGTERM, then SIGKILL) and removes the data dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILLs every component and removes the data dir synchronously, for "exit" handlers. */
  stopSync(): void;
  /** Lets this process exit while the control plane runs; pair it with `stopSync` in an "exit" handler. */
  unref(): void;
}

/** The in-cluster service IP of `kubernetes.default`; first address of the service range. */
const SERVICE_CIDR = "10.96.0.0/16";
const KUBERNETES_SERVICE_IP = "10.96.0.1";
const POD_CIDR = "10.244.0.0/16";
export const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";
const MAX_ATTEMPTS = 3;

interface Files {
  readonly caCert: string;
  readonly caKey: string;
  readonly servingCert: string;
  readonly servingKey: string;
  readonly saKey: string;
  readonly saPub: string;
  readonly kubeconfig: string;
  readonly kwokStages: string;
  readonly pidFile: string;
}

function defaultCrdPaths(): string[] {
  const root = repoRoot();
  return [join(root, "config", "crd"), join(root, ".tools", "crds", "flux")];
}

/** `toolPath`, with a PATH lookup for its bare-name fallback so a missing tool is reported by its expected path. */
function binary(name: string): string {
  const path = toolPath(name);
  if (path.includes("/")) return path;
  for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not in this directory
    }
  }
  return join(repoRoot(), ".tools", "bin", name);
}

function prepareDataDir(requested: string | undefined): string {
  if (requested === undefined) return mkdtempSync(join(tmpdir(), "stageset-controlplane-"));
  mkdirSync(requested, { recursive: true });
  if (readdirSync(requested).length > 0) {
    throw new ControlPlaneError(
      `control-plane data dir ${requested} is not empty; another control plane may be using it (stop it first, e.g. \`make cluster-down\`)`,
    );
  }
  return requested;
}

/**
 * Starts etcd, kube-apiserver (RBAC, service-account tokens, TLS), kube-controller-manager,
 * kube-scheduler and kwok on free 127.0.0.1 ports, then creates the fake nodes and
 * installs the CRDs. Retries with fresh ports when another process grabbed one.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  for (let attempt = 1; ; attempt++) {
    const dataDir = prepareDataDir(options.dataDir);
    try {
      return await startOnce(dataDir, options);
    } catch (err) {
      const portTaken = err instanceof ControlPlaneError && /address already in use/i.test(err.message);
      if (!portTaken || attempt >= MAX_ATTEMPTS) throw err;
      options.log?.(`a port was taken by another process; retrying (attempt ${attempt + 1}/${MAX_ATTEMPTS})`);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
}

async function startOnce(dataDir: string, options: ControlPlaneOptions): Promise<ControlPlane> {
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  const log = options.log ?? (() => {});
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  const deadline = started + timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());

  const files = writeStaticFiles(dataDir);
  const [etcdPort, etcdPeerPort, apiPort, kcmPort, schedulerPort] = (await freePorts(5)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const server = `https://127.0.0.1:${apiPort}`;
  const pki = createPki({ servingAltNames: ["127.0.0.1", KUBERNETES_SERVICE_IP, ...API_SERVER_DNS_NAMES] });
  writeFileSync(files.caCert, pki.ca.certPem);
  writeFileSync(files.caKey, pki.ca.keyPem, { mode: 0o600 });
  writeFileSync(files.servingCert, pki.serving.certPem);
  writeFileSync(files.servingKey, pki.serving.keyPem, { mode: 0o600 });
  writeFileSync(files.saKey, pki.serviceAccount.privateKeyPem, { mode: 0o600 });
  writeFileSync(files.saPub, pki.serviceAccount.publicKeyPem);
  const kubeconfigText = renderKubeconfig({
    server,
    caCertPem: pki.ca.certPem,
    clientCertPem: pki.admin.certPem,
    clientKeyPem: pki.admin.keyPem,
  });
  writeFileSync(files.kubeconfig, kubeconfigText, { mode: 0o600 });
  const adminTls = { ca: pki.ca.certPem, cert: pki.admin.certPem, key: pki.admin.keyPem };

  writeFileSync(files.pidFile, "");
  startWatchdog(files.pidFile, dataDir);
  const components: Component[] = [];
  const launch = (spec: Omit<ComponentSpec, "logFile">): Component => {
    const component = Component.start({ ...spec, logFile: join(dataDir, `${spec.name}.log`) });
    components.push(component);
    writeFileSync(files.pidFile, components.map((c) => c.pid).join("\n") + "\n");
    return component;
  };
  const failedComponent = () => components.find((c) => !c.isRunning())?.exitReason();
  let abandoned: string | undefined;
  const budget = () => ({ timeoutMs: remaining(), abortIf: () => failedComponent() ?? abandoned });

  let stopped: Promise<void> | undefined;
  const removeDataDir = () => {
    rmSync(files.pidFile, { force: true });
    rmSync(dataDir, { recursive: true, force: true });
  };
  const stop = () => {
    stopped ??= Promise.all(components.map((c) => c.stop())).then(removeDataDir);
    return stopped;
  };
  const stopSync = () => {
    for (const c of components) c.killNow();
    removeDataDir();
  };

  try {
    // kube-apiserver retries its etcd connection, so both start together.
    launch({ name: "etcd", binary: binary("etcd"), args: etcdArgs(dataDir, etcdPort, etcdPeerPort) });
    launch({
      name: "kube-apiserver",
      binary: binary("kube-apiserver"),
      args: apiServerArgs(dataDir, files, apiPort, etcdPort),
    });
    await waitFor(() => probeHealth(`${server}/readyz`, adminTls), {
      description: `kube-apiserver ${server}/readyz`,
      ...budget(),
    });
    log(`kube-apiserver ready after ${elapsed()}`);

    launch({
      name: "kube-controller-manager",
      binary: binary("kube-controller-manager"),
      args: controllerManagerArgs(files, kcmPort),
    });
    launch({ name: "kube-scheduler", binary: binary("kube-scheduler"), args: schedulerArgs(files, schedulerPort) });
    launch({ name: "kwok", binary: binary("kwok"), args: kwokArgs(files) });

    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromString(kubeconfigText);
    const crdFiles = listManifestFiles(options.crdPaths ?? defaultCrdPaths());
    const servingTls = { ca: pki.ca.certPem };
    const healthOf = (name: string, port: number) =>
      waitFor(() => probeHealth(`https://127.0.0.1:${port}/healthz`, servingTls), {
        description: `${name} https://127.0.0.1:${port}/healthz`,
        ...budget(),
      });
    const [crdNames, nodeNames] = await Promise.all([
      installCrds(kubeConfig, { server, tls: adminTls }, crdFiles, budget()),
      createFakeNodes(kubeConfig, options.nodes ?? 1, budget()),
      waitForDefaultServiceAccount(kubeConfig, budget()),
      healthOf("kube-controller-manager", kcmPort),
      healthOf("kube-scheduler", schedulerPort),
    ]);
    const failed = failedComponent();
    if (failed !== undefined) throw new ControlPlaneError(failed);
    if (options.kubeconfigPath !== undefined) writeFileSync(options.kubeconfigPath, kubeconfigText, { mode: 0o600 });
    const startupMs = Date.now() - started;
    log(`control plane ready after ${elapsed()} (${crdNames.length} CRDs, ${nodeNames.length} kwok node(s)) in ${dataDir}`);
    return {
      dataDir,
      kubeconfigPath: files.kubeconfig,
      kubeConfig,
      server,
      nodeNames,
      crdNames,
      startupMs,
      components,
      failedComponent,
      stop,
      stopSync,
      unref: () => components.forEach((c) => c.unref()),
    };
  } catch (err) {
    abandoned = "the control-plane start was abandoned";
    const crashed = components.filter((c) => !c.isRunning());
    await Promise.all(components.map((c) => c.stop()));
    // Keep the logs for the post-mortem; the watchdog leaves once the pid file is gone.
    rmSync(files.pidFile, { force: true });
    rmSync(join(dataDir, "etcd"), { recursive: true, force: true });
    throw startFailure(err, crashed.length > 0 ? crashed : components.slice(0, 2), dataDir);
  }
}

/** The error, where the logs are, and the log tails of `suspects` (the crashed components, else etcd and kube-apiserver). */
function startFailure(err: unknown, suspects: readonly Component[], dataDir: string): ControlPlaneError {
  const reason = err instanceof Error ? err.message : String(err);
  const tails = suspects.map((c) => `--- ${c.logFile} (last lines) ---\n${c.logTail()}`).join("\n");
  return new ControlPlaneError(
    `the test control plane did not start: ${reason}\nComponent logs are in ${dataDir}/*.log\n${tails}`,
    { cause: err },
  );
}

function writeStaticFiles(dataDir: string): Files {
  const files: Files = {
    caCert: join(dataDir, "ca.crt"),
    caKey: join(dataDir, "ca.key"),
    servingCert: join(dataDir, "serving.crt"),
    servingKey: join(dataDir, "serving.key"),
    saKey: join(dataDir, "service-account.key"),
    saPub: join(dataDir, "service-account.pub"),
    kubeconfig: join(dataDir, "admin.kubeconfig"),
    kwokStages: join(dataDir, "kwok-stages.yaml"),
    pidFile: join(dataDir, "pids"),
  };
  const stagesSource = join(repoRoot(), "test", "support", "controlplane", "kwok-stages.yaml");
  writeFileSync(files.kwokStages, readFileSync(stagesSource));
  return files;
}

function etcdArgs(dataDir: string, clientPort: number, peerPort: number): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return [
    `--data-dir=${join(dataDir, "etcd")}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=default=${peer}`,
    // Throwaway data: durability buys nothing and fsync dominates on slow disks.
    "--unsafe-no-fsync=true",
    "--log-level=warn",
  ];
}

function apiServerArgs(dataDir: string, files: Files, port: number, etcdPort: number): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${port}`,
    `--cert-dir=${join(dataDir, "apiserver-certs")}`,
    `--tls-cert-file=${files.servingCert}`,
    `--tls-private-key-file=${files.servingKey}`,
    `--client-ca-file=${files.caCert}`,
    "--authorization-mode=Node,RBAC",
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${files.saPub}`,
    `--service-account-signing-key-file=${files.saKey}`,
    `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    "--allow-privileged=true",
    // STAGESET_TEST_APISERVER_PROFILING=1 serves /debug/pprof (what showed the
    // labelled lists of B3 in docs/performance.md); off otherwise.
    `--profiling=${process.env["STAGESET_TEST_APISERVER_PROFILING"] === "1"}`,
    "--v=1",
  ];
}

/** Connection, serving and election flags kube-controller-manager and kube-scheduler share. */
function componentArgs(files: Files, port: number): string[] {
  return [
    `--kubeconfig=${files.kubeconfig}`,
    `--authentication-kubeconfig=${files.kubeconfig}`,
    `--authorization-kubeconfig=${files.kubeconfig}`,
    "--leader-elect=false",
    "--bind-address=127.0.0.1",
    `--secure-port=${port}`,
    `--tls-cert-file=${files.servingCert}`,
    `--tls-private-key-file=${files.servingKey}`,
    // The default client-side limit (20 QPS for the controller-manager) lets a
    // test that creates a few hundred workloads starve every other test's
    // Deployments for minutes; kwokctl lifts it the same way.
    "--kube-api-qps=5000",
    "--kube-api-burst=10000",
    "--profiling=false",
    "--v=1",
  ];
}

function controllerManagerArgs(files: Files, port: number): string[] {
  return [
    ...componentArgs(files, port),
    `--service-account-private-key-file=${files.saKey}`,
    `--root-ca-file=${files.caCert}`,
    `--cluster-signing-cert-file=${files.caCert}`,
    `--cluster-signing-key-file=${files.caKey}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    "--controllers=*",
    // kwok's node heartbeats can fall behind on a loaded two-core machine; a
    // fake node must never be declared NotReady (which un-readies its pods).
    "--node-monitor-grace-period=1h",
    "--node-startup-grace-period=1h",
  ];
}

function schedulerArgs(files: Files, port: number): string[] {
  return componentArgs(files, port);
}

function kwokArgs(files: Files): string[] {
  return [
    `--kubeconfig=${files.kubeconfig}`,
    `--config=${files.kwokStages}`,
    "--manage-all-nodes=true",
    `--cidr=${POD_CIDR}`,
    "--node-ip=127.0.0.1",
  ];
}

/**
 * One of Flux's controllers as a child process for tests and benchmarks:
 * the binary hack/tools.sh builds from Flux's module (tools/<name>), started
 * against the test control plane with its health and metrics listeners on
 * free loopback ports and no leader election. It reads the KUBECONFIG
 * environment variable, as controller-runtime does (Flux's mains register no
 * --kubeconfig flag). With `namespace` it watches only that namespace
 * (`--watch-all-namespaces=false` and RUNTIME_NAMESPACE), so controllers of
 * tests running in parallel never act on each other's objects.
 *
 * Also: `ensureCrds` for the CRDs hack/flux-crds.sh copied that the shared
 * control plane may have been started without.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "../../src/api/types.js";
import type { KubeClient } from "../../src/kube/client.js";
import { isAlreadyExists } from "../../src/kube/errors.js";
import { repoRoot, toolPath } from "../../src/util/tools.js";
import { freePorts } from "./controlplane/ports.js";
import { waitFor } from "./wait.js";

export interface FluxControllerOptions {
  kubeconfigPath: string;
  /** Watch only this namespace; omitted: all namespaces. */
  namespace?: string;
  /** Default 120 s (a busy machine). */
  startTimeoutMs?: number;
  extraArgs?: string[];
  /** Extra environment (the process gets a clean one). */
  env?: Record<string, string>;
}

export abstract class FluxController {
  #child: ChildProcess | undefined;
  #output = "";
  #exited: string | undefined;
  protected readonly options: FluxControllerOptions;
  /** `http://127.0.0.1:<port>/metrics` once started. */
  metricsUrl = "";

  constructor(
    readonly name: string,
    options: FluxControllerOptions,
  ) {
    this.options = options;
  }

  /** The process id (for CPU and memory measurements). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Everything it printed (JSON log lines), the last 2 MB. */
  get output(): string {
    return this.#output;
  }

  /** Why it exited, or undefined while it runs. */
  get exited(): string | undefined {
    return this.#exited;
  }

  /** Its log lines, parsed (non-JSON lines skipped). */
  logLines(): Record<string, unknown>[] {
    return this.#output
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }

  /** Flags besides the listeners, leader election and namespace scope. */
  protected abstract args(ports: number[]): Promise<string[]> | string[];
  /** Free ports the subclass needs besides health and metrics. */
  protected extraPorts(): number {
    return 0;
  }

  async start(): Promise<void> {
    const bin = toolPath(this.name);
    if (!bin.includes("/") || !existsSync(bin)) {
      throw new Error(`${this.name} is not built: run \`hack/tools.sh ${this.name}\` (or \`make setup\`)`);
    }
    const [health, metrics, ...rest] = (await freePorts(2 + this.extraPorts())) as [number, number, ...number[]];
    this.metricsUrl = `http://127.0.0.1:${metrics}/metrics`;
    const ns = this.options.namespace;
    const args = [
      `--health-addr=127.0.0.1:${health}`,
      `--metrics-addr=127.0.0.1:${metrics}`,
      "--enable-leader-election=false",
      "--log-encoding=json",
      ...(ns ? ["--watch-all-namespaces=false"] : []),
      ...(await this.args(rest)),
      ...(this.options.extraArgs ?? []),
    ];
    const child = spawn(bin, args, {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        KUBECONFIG: this.options.kubeconfigPath,
        ...(ns ? { RUNTIME_NAMESPACE: ns } : {}),
        ...this.options.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    this.#exited = undefined;
    const collect = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString("utf8")).slice(-2_000_000);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    child.once("exit", (code, signal) => {
      this.#exited = `${this.name} exited (${signal ?? code}):\n${this.#output.slice(-4000)}`;
    });
    const kill = () => child.kill("SIGKILL");
    process.once("exit", kill);
    child.once("exit", () => process.off("exit", kill));
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${health}/readyz`);
        await res.arrayBuffer();
        return res.ok;
      },
      { description: `${this.name} /readyz`, timeoutMs: this.options.startTimeoutMs ?? 120_000, intervalMs: 100, abortIf: () => this.#exited },
    );
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(killer);
  }

  /** Its Prometheus metrics, as text. */
  async metrics(): Promise<string> {
    const res = await fetch(this.metricsUrl);
    return res.text();
  }
}

/** The pristine CRD file `<group>_<plural>.yaml` hack/flux-crds.sh copied into .tools/crds/<dir>/, parsed. */
export function fluxCrdFile(dir: string, file: string): KubeObject {
  const path = join(repoRoot(), ".tools", "crds", dir, file);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`hack/tools.sh\` (hack/flux-crds.sh copies the Flux CRDs)`);
  const crd = parseAllDocuments(readFileSync(path, "utf8"))
    .map((d) => d.toJS() as KubeObject | null)
    .find((d) => d?.kind === "CustomResourceDefinition");
  if (!crd) throw new Error(`${path} holds no CustomResourceDefinition`);
  return crd;
}

/**
 * Creates the CRDs when the cluster lacks them (a shared control plane
 * started before they were copied) and waits until they are Established.
 * Never changes existing ones.
 */
export async function ensureCrds(client: KubeClient, crds: readonly KubeObject[]): Promise<void> {
  for (const crd of crds) {
    const name = crd.metadata.name!;
    const ref = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name };
    if (!(await client.get(ref))) {
      try {
        await client.create(crd);
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
    }
    await waitFor(
      async () => {
        const live = await client.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>(ref);
        return live?.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
      },
      { description: `CRD ${name} Established`, timeoutMs: 30_000 },
    );
  }
  client.invalidateDiscovery();
}

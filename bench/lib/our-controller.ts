/**
 * Our controller as operators run it, a process of its own (`node
 * <CONTROLLER_NODE_FLAGS> dist/src/main.js`, as the image's entrypoint), so its CPU and memory compare with kustomize-controller's
 * process: watching one namespace, no leader election, no webhook, default
 * flags otherwise. With `cpuProfileDir` it runs under `node --cpu-prof` and
 * writes a .cpuprofile there when stopped.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CONTROLLER_NODE_FLAGS } from "../../src/util/node-flags.js";
import { repoRoot } from "../../src/util/tools.js";
import { freePorts } from "../../test/support/controlplane/ports.js";
import { waitFor } from "../../test/support/wait.js";

export interface OurControllerOptions {
  kubeconfigPath: string;
  namespace: string;
  extraArgs?: string[];
  cpuProfileDir?: string;
  /** Extra flags for node itself (e.g. `--heap-prof`), before the script. */
  nodeArgs?: string[];
}

export class OurController {
  readonly name = "stageset-controller";
  #child: ChildProcess | undefined;
  #output = "";
  #exited: string | undefined;
  #metricsPort = 0;

  constructor(private readonly options: OurControllerOptions) {}

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get output(): string {
    return this.#output;
  }

  async start(): Promise<void> {
    const main = join(repoRoot(), "dist", "src", "main.js");
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\``);
    const [health, metrics] = (await freePorts(2)) as [number, number];
    this.#metricsPort = metrics;
    const args = [
      ...CONTROLLER_NODE_FLAGS,
      ...(this.options.cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${this.options.cpuProfileDir}`] : []),
      ...(this.options.nodeArgs ?? []),
      main,
      `--kubeconfig=${this.options.kubeconfigPath}`,
      `--watch-namespaces=${this.options.namespace}`,
      `--health-probe-bind-address=127.0.0.1:${health}`,
      `--metrics-bind-address=127.0.0.1:${metrics}`,
      "--gate-bind-address=",
      "--enable-webhook=false",
      "--log-encoding=json",
      ...(this.options.extraArgs ?? []),
    ];
    const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" }, stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    const keep = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString("utf8")).slice(-1_000_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.once("exit", (code, signal) => (this.#exited = `stageset-controller exited (${signal ?? code}):\n${this.#output.slice(-4000)}`));
    const kill = () => child.kill("SIGKILL");
    process.once("exit", kill);
    child.once("exit", () => process.off("exit", kill));
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${health}/readyz`);
        await res.arrayBuffer();
        return res.ok;
      },
      { description: "stageset-controller /readyz", timeoutMs: 60_000, intervalMs: 100, abortIf: () => this.#exited },
    );
  }

  /**
   * Seconds spent so far in each phase of its stage runs (build, apply,
   * verify, ...), the sums of its `stageset_stage_phase_duration_seconds`
   * histogram; read from its /metrics.
   */
  async phaseSeconds(): Promise<Record<string, number>> {
    const res = await fetch(`http://127.0.0.1:${this.#metricsPort}/metrics`);
    const text = await res.text();
    const phases: Record<string, number> = {};
    for (const m of text.matchAll(/^stageset_stage_phase_duration_seconds_sum\{phase="([a-z]+)"\} ([0-9.e+-]+)$/gm)) phases[m[1]!] = Number(m[2]);
    return phases;
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(killer);
  }
}

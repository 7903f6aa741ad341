/**
 * Flux's real notification-controller for tests: the v1.9.3 binary
 * hack/tools.sh builds from Flux's module (tools/notification-controller),
 * started against the test control plane with every listener (event server,
 * webhook receiver, metrics, health) on a free loopback port and no leader
 * election; stop() ends it.
 *
 * It has no --kubeconfig flag (Flux's main does not register one); it reads
 * the KUBECONFIG environment variable, as controller-runtime does. It watches
 * Alerts and Providers in all namespaces (its default), so a test's own
 * namespace is enough to route events.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "../../src/api/types.js";
import type { KubeClient } from "../../src/kube/client.js";
import { isAlreadyExists } from "../../src/kube/errors.js";
import { repoRoot, toolPath } from "../../src/util/tools.js";
import { freePorts } from "./controlplane/ports.js";
import { waitFor } from "./wait.js";

export const NOTIFICATION_CRDS = ["alerts", "providers", "receivers"].map((plural) => `${plural}.notification.toolkit.fluxcd.io`);

/** The pristine CRD file hack/flux-crds.sh copied, parsed. */
export function notificationCrdFile(name: string): KubeObject {
  const path = join(repoRoot(), ".tools", "crds", "flux", `notification.toolkit.fluxcd.io_${name.split(".")[0]}.yaml`);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`hack/tools.sh\` (hack/flux-crds.sh copies the notification CRDs)`);
  const docs = parseAllDocuments(readFileSync(path, "utf8")).map((d) => d.toJS() as KubeObject | null);
  const crd = docs.find((d) => d?.kind === "CustomResourceDefinition");
  if (!crd) throw new Error(`${path} holds no CustomResourceDefinition`);
  return crd;
}

/**
 * Creates the notification CRDs when the cluster lacks them (a shared
 * control plane started before they were added to .tools/crds/flux) and
 * waits until they are Established. Never changes existing ones.
 */
export async function ensureNotificationCrds(client: KubeClient): Promise<void> {
  for (const name of NOTIFICATION_CRDS) {
    const existing = await client.get({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name });
    if (!existing) {
      try {
        await client.create(notificationCrdFile(name));
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
    }
    await waitFor(
      async () => {
        const live = await client.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>({
          apiVersion: "apiextensions.k8s.io/v1",
          kind: "CustomResourceDefinition",
          name,
        });
        return live?.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
      },
      { description: `CRD ${name} Established`, timeoutMs: 30_000 },
    );
  }
  client.invalidateDiscovery();
}

export interface NotificationControllerOptions {
  kubeconfigPath: string;
  /** Its --rate-limit-interval: the same event within it is answered 429 and not dispatched (Flux default 5m). */
  rateLimitInterval?: string;
  /** Default 120 s (a busy machine). */
  startTimeoutMs?: number;
  extraArgs?: string[];
}

export class NotificationController {
  /** Where controllers post events: `http://127.0.0.1:<port>/` (its --events-addr is the address it listens on). */
  eventsUrl = "";
  #child: ChildProcess | undefined;
  #output = "";
  #exited: string | undefined;
  readonly #options: NotificationControllerOptions;

  constructor(options: NotificationControllerOptions) {
    this.#options = options;
  }

  /** Everything it printed (JSON log lines). */
  get output(): string {
    return this.#output;
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

  /** Resolves with the first log line `match` accepts (lines printed before the call count too). */
  async whenLogged(match: (line: Record<string, unknown>) => boolean, description: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return waitFor(() => this.logLines().find(match), {
      description: `notification-controller to log ${description}`,
      timeoutMs,
      intervalMs: 50,
      abortIf: () => this.#exited,
    });
  }

  async start(): Promise<void> {
    const bin = toolPath("notification-controller");
    if (!bin.includes("/") || !existsSync(bin)) {
      throw new Error("notification-controller is not built: run `hack/tools.sh notification-controller` (or `make setup`)");
    }
    const [events, receiver, metrics, health] = (await freePorts(4)) as [number, number, number, number];
    this.eventsUrl = `http://127.0.0.1:${events}/`;
    const args = [
      `--events-addr=127.0.0.1:${events}`,
      `--receiverAddr=127.0.0.1:${receiver}`,
      `--metrics-addr=127.0.0.1:${metrics}`,
      `--health-addr=127.0.0.1:${health}`,
      "--watch-all-namespaces=true",
      "--enable-leader-election=false",
      "--log-level=debug",
      "--log-encoding=json",
      ...(this.#options.rateLimitInterval ? [`--rate-limit-interval=${this.#options.rateLimitInterval}`] : []),
      ...(this.#options.extraArgs ?? []),
    ];
    const child = spawn(bin, args, {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", KUBECONFIG: this.#options.kubeconfigPath },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    const collect = (chunk: Buffer) => {
      this.#output += chunk.toString("utf8");
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    child.once("exit", (code, signal) => {
      this.#exited = `notification-controller exited (${signal ?? code}):\n${this.#output.slice(-4000)}`;
    });
    process.once("exit", () => child.kill("SIGKILL"));
    const timeoutMs = this.#options.startTimeoutMs ?? 120_000;
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${health}/readyz`);
        await res.arrayBuffer();
        return res.ok;
      },
      { description: "notification-controller /readyz", timeoutMs, intervalMs: 100, abortIf: () => this.#exited },
    );
    await waitFor(() => canConnect(events), { description: "notification-controller event server listening", timeoutMs, intervalMs: 100, abortIf: () => this.#exited });
    // Its Alert and Provider informers started (the event server lists Alerts from them).
    await this.whenLogged((l) => l.msg === "Starting workers" && l.controllerKind === "Alert", "the Alert controller started", timeoutMs);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || this.#exited) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(killer);
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { CONTROLLER_NODE_FLAGS } from "../../src/util/node-flags.js";
import { isolatedControllerFlags } from "./controller.js";
import { repoRoot } from "../../src/util/tools.js";

/** How to run the controller binary: the compiled one when built, else the TypeScript source through tsx. */
export function controllerCommand(): string[] {
  const compiled = `${repoRoot()}/dist/src/main.js`;
  return existsSync(compiled) ? [...CONTROLLER_NODE_FLAGS, compiled] : [...CONTROLLER_NODE_FLAGS, "--import", "tsx", `${repoRoot()}/src/main.ts`];
}

/**
 * The controller binary as a child process watching `namespace`, started and
 * SIGKILLed on demand (for crash tests): free probe port, no metrics, gate or
 * webhook, plus `extraFlags`. `stderr()` holds the last 4000 characters of
 * the current life's stderr; `exited()` names an unexpected exit (for a
 * waitFor's `abortIf`).
 */
export class ControllerProcess {
  #child: ChildProcess | undefined;
  #stderr = "";

  constructor(
    readonly kubeconfigPath: string,
    readonly namespace: string,
    readonly extraFlags: string[] = [],
  ) {}

  start(): void {
    this.#stderr = "";
    const child = spawn(
      process.execPath,
      [
        ...controllerCommand(),
        ...isolatedControllerFlags(this.namespace),
        "--kubeconfig",
        this.kubeconfigPath,
        ...this.extraFlags,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    child.stderr?.on("data", (chunk: Buffer) => (this.#stderr = (this.#stderr + chunk.toString()).slice(-4000)));
    this.#child = child;
  }

  /** SIGKILLs the running process (if any) and resolves once it exited. */
  async kill(): Promise<void> {
    const running = this.#child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    await exited;
  }

  stderr(): string {
    return this.#stderr;
  }

  /** A message when the process exited on its own (not by `kill`), else undefined. */
  exited(): string | undefined {
    const child = this.#child;
    return child && child.exitCode !== null ? `the controller exited: ${this.#stderr}` : undefined;
  }
}

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { ControlPlaneError } from "./errors.js";

export interface ComponentSpec {
  /** Short name used in messages and the log file name ("etcd"). */
  readonly name: string;
  readonly binary: string;
  readonly args: readonly string[];
  /** stdout and stderr go here. */
  readonly logFile: string;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One running control-plane process with its log file. */
export class Component {
  readonly name: string;
  readonly logFile: string;
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;
  private exitStatus: ExitStatus | undefined;
  private readonly child: ChildProcess;

  private constructor(spec: ComponentSpec, child: ChildProcess, pid: number) {
    this.name = spec.name;
    this.logFile = spec.logFile;
    this.child = child;
    this.pid = pid;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
    });
  }

  static start(spec: ComponentSpec): Component {
    if (!existsSync(spec.binary)) {
      throw new ControlPlaneError(
        `${spec.name}: ${spec.binary} does not exist; build the pinned tools with \`make tools\` (hack/tools.sh)`,
      );
    }
    const log = openSync(spec.logFile, "a");
    try {
      // Same process group as the launcher: a Ctrl-C in the terminal reaches
      // every component, and the watchdog covers a launcher that is killed.
      const child = spawn(spec.binary, spec.args, { stdio: ["ignore", log, log] });
      let spawnError: Error | undefined;
      child.on("error", (err) => (spawnError = err)); // a started process reports through "exit"
      if (child.pid === undefined) {
        throw new ControlPlaneError(
          `${spec.name}: could not start ${spec.binary}${spawnError ? `: ${spawnError.message}` : ""}; is it executable?`,
        );
      }
      return new Component(spec, child, child.pid);
    } finally {
      closeSync(log);
    }
  }

  /** Why the process is gone, or undefined while it runs. */
  exitReason(): string | undefined {
    if (this.exitStatus === undefined) return undefined;
    const how = this.exitStatus.signal ? `signal ${this.exitStatus.signal}` : `code ${this.exitStatus.code}`;
    return `${this.name} exited with ${how}; see ${this.logFile}`;
  }

  isRunning(): boolean {
    return this.exitStatus === undefined;
  }

  /** The last lines of the log, for failure messages. */
  logTail(lines = 15): string {
    try {
      const text = readFileSync(this.logFile, "utf8").trimEnd();
      return text.split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  /** Lets the launcher exit while this process runs (its "exit" handler must then kill it). */
  unref(): void {
    this.child.unref();
  }

  /**
   * SIGKILL and wait for the exit. Graceful shutdown buys nothing for a
   * throwaway cluster whose data is deleted next, and kube-apiserver's takes seconds.
   */
  async stop(): Promise<void> {
    this.killNow();
    await this.exited;
  }

  /** Synchronous SIGKILL, for "exit" handlers that cannot await. */
  killNow(): void {
    if (this.isRunning()) this.child.kill("SIGKILL");
  }
}

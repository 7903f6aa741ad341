/**
 * A long-running local control plane for the demo and for poking at by hand:
 *
 *   node --import tsx test/support/controlplane/cli.ts up      # start in the background
 *   node --import tsx test/support/controlplane/cli.ts status  # exit 0 when running
 *   node --import tsx test/support/controlplane/cli.ts down    # stop and remove its data
 *
 * `up` writes the admin kubeconfig to .tools/kubeconfig; the data and component
 * logs live in .tools/controlplane/, the supervisor's own log in .tools/controlplane.log.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { repoRoot } from "../../../src/util/tools.js";
import { startControlPlane } from "./controlplane.js";
import { ControlPlaneError } from "./errors.js";

/** Program output (not a log line). */
const print = (line: string): void => void process.stdout.write(`${line}\n`);

const tools = join(repoRoot(), ".tools");
const paths = {
  dataDir: join(tools, "controlplane"),
  kubeconfig: join(tools, "kubeconfig"),
  pidFile: join(tools, "controlplane.pid"),
  log: join(tools, "controlplane.log"),
};
const UP_TIMEOUT_MS = 180_000;
const DOWN_TIMEOUT_MS = 20_000;

function runningPid(): number | undefined {
  if (!existsSync(paths.pidFile)) return undefined;
  const pid = Number(readFileSync(paths.pidFile, "utf8").trim());
  if (!(pid > 0)) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

function removeState(): void {
  rmSync(paths.dataDir, { recursive: true, force: true });
  rmSync(paths.kubeconfig, { force: true });
  rmSync(paths.pidFile, { force: true });
}

function logTail(lines = 30): string {
  return existsSync(paths.log) ? readFileSync(paths.log, "utf8").trimEnd().split("\n").slice(-lines).join("\n") : "";
}

async function up(): Promise<number> {
  const pid = runningPid();
  if (pid !== undefined) {
    print(`control plane already running (pid ${pid}); kubeconfig: ${paths.kubeconfig}`);
    return 0;
  }
  removeState();
  const started = Date.now();
  const log = openSync(paths.log, "w");
  // Its own process group, so `down` can signal the supervisor and every component at once.
  const supervisor = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "serve"], {
    detached: true,
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  let exitCode: number | null | undefined;
  supervisor.once("exit", (code) => (exitCode = code ?? 1));
  while (Date.now() - started < UP_TIMEOUT_MS) {
    if (exitCode !== undefined) {
      console.error(`control plane failed to start (exit ${exitCode}); ${paths.log}:\n${logTail()}`);
      return 1;
    }
    if (runningPid() === supervisor.pid) {
      supervisor.unref();
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      print(`control plane up in ${seconds}s (pid ${supervisor.pid})`);
      print(`  export KUBECONFIG=${paths.kubeconfig}`);
      print(`  component logs: ${paths.dataDir}/*.log`);
      return 0;
    }
    await sleep(200);
  }
  console.error(`control plane not ready after ${UP_TIMEOUT_MS / 1000}s; stopping it. ${paths.log}:\n${logTail()}`);
  if (supervisor.pid !== undefined) process.kill(-supervisor.pid, "SIGKILL");
  removeState();
  return 1;
}

async function serve(): Promise<number> {
  const controlPlane = await startControlPlane({
    dataDir: paths.dataDir,
    kubeconfigPath: paths.kubeconfig,
    log: (line) => print(`[controlplane] ${line}`),
  });
  let stopping = false;
  const shutdown = async (why: string, code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      print(`[controlplane] stopping: ${why}`);
      await controlPlane.stop();
      rmSync(paths.kubeconfig, { force: true });
      rmSync(paths.pidFile, { force: true });
    }
    process.exit(code);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM", 0));
  process.on("SIGINT", () => void shutdown("SIGINT", 0));
  writeFileSync(paths.pidFile, `${process.pid}\n`);
  for (;;) {
    await sleep(2000);
    const failed = controlPlane.failedComponent();
    if (failed !== undefined) await shutdown(failed, 1);
  }
}

async function down(): Promise<number> {
  const pid = runningPid();
  if (pid !== undefined) {
    process.kill(pid, "SIGTERM");
    const deadline = Date.now() + DOWN_TIMEOUT_MS;
    while (runningPid() === pid && Date.now() < deadline) await sleep(100);
    if (runningPid() === pid) {
      console.error(`control plane (pid ${pid}) ignored SIGTERM for ${DOWN_TIMEOUT_MS / 1000}s; killing its process group`);
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    print(`control plane (pid ${pid}) stopped`);
  } else {
    print("control plane not running");
  }
  removeState();
  return 0;
}

function status(): number {
  const pid = runningPid();
  if (pid === undefined) {
    print("control plane not running");
    return 1;
  }
  print(`control plane running (pid ${pid}); KUBECONFIG=${paths.kubeconfig}; logs in ${paths.dataDir}/*.log`);
  return 0;
}

const commands: Record<string, () => Promise<number> | number> = { up, down, status, serve };
const command = commands[process.argv[2] ?? ""];
if (command === undefined) {
  console.error("usage: cli.ts up|down|status");
  process.exit(2);
}
try {
  process.exitCode = await command();
} catch (err) {
  if (!(err instanceof ControlPlaneError)) throw err;
  console.error(err.message);
  process.exitCode = 1;
}

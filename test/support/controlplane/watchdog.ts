import { spawn } from "node:child_process";

/**
 * A detached process that outlives a launcher killed without warning
 * (SIGKILL, OOM, a crashed test worker): once the launcher's pid is gone it
 * SIGKILLs every pid listed in `pidFile` and removes `dataDir`. It exits on its
 * own as soon as `pidFile` disappears, which is what a normal stop does first.
 */
const WATCHDOG_SOURCE = `
const fs = require("node:fs");
const [launcherPid, pidFile, dataDir] = process.argv.slice(1);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === "EPERM"; } };
const timer = setInterval(() => {
  if (!fs.existsSync(pidFile)) process.exit(0);
  if (alive(Number(launcherPid))) return;
  clearInterval(timer);
  for (const line of fs.readFileSync(pidFile, "utf8").split("\\n")) {
    const pid = Number(line);
    if (pid > 0) { try { process.kill(pid, "SIGKILL"); } catch {} }
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
}, 1000);
`;

export function startWatchdog(pidFile: string, dataDir: string): void {
  const child = spawn(process.execPath, ["-e", WATCHDOG_SOURCE, String(process.pid), pidFile, dataDir], {
    detached: true,
    stdio: "ignore",
    cwd: "/",
  });
  child.unref();
}

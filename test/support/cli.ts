import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const HERE = fileURLToPath(import.meta.url);
// From the sources (tsx) run src/cli/main.ts; from dist/test run the compiled dist/src/cli/main.js.
const FROM_SOURCE = HERE.endsWith(".ts");
const ROOT = join(dirname(HERE), "..", "..");
const ENTRY = FROM_SOURCE ? ["--import", "tsx", join(ROOT, "src/cli/main.ts")] : [join(ROOT, "src/cli/main.js")];

/**
 * Runs stagesetctl as a subprocess, the way a user does, and collects its
 * output and exit code. `kubeconfig` becomes KUBECONFIG; `input` is written to
 * its standard input.
 */
export function runCli(args: string[], options: { kubeconfig: string; env?: Record<string, string>; input?: string }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...ENTRY, ...args], {
      cwd: FROM_SOURCE ? ROOT : join(ROOT, ".."),
      env: { ...process.env, KUBECONFIG: options.kubeconfig, ...options.env },
    });
    child.stdin.end(options.input ?? "");
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

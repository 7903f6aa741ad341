import { spawn } from "node:child_process";
import { toolPath } from "../util/tools.js";

export interface KustomizeOptions {
  /** Kill kustomize after this long. Default 60 s. */
  timeoutMs?: number;
  /** Refuse output larger than this. Default 256 MiB. */
  maxOutputBytes?: number;
  signal?: AbortSignal;
  /** The binary; default `toolPath("kustomize")`. */
  binary?: string;
}

/** kustomize failed; `message` is its own explanation, or why it was stopped. */
export class KustomizeFailure extends Error {
  constructor(
    message: string,
    /** Stopped by us (timeout, cancellation, output cap) rather than failing on its input. */
    readonly stopped = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024;
const MAX_STDERR = 64 * 1024;

/**
 * Runs `kustomize build` on a directory and returns the rendered YAML.
 *
 * `--load-restrictor LoadRestrictionsNone` as in Flux: a kustomization may
 * use files from elsewhere in the artifact (for example `../base/deploy.yaml`),
 * which the default restrictor refuses. Confinement to the artifact is
 * enforced beforehand (see confine.ts). Plugins, exec functions and Helm stay
 * off (kustomize's defaults), matching Flux's builtin-only plugin config.
 *
 * The child gets an empty environment apart from HOME/TMPDIR pointing into
 * the workspace, so no controller credentials or proxy settings leak into a
 * tenant's build.
 */
export function runKustomize(dir: string, workspaceRoot: string, options: KustomizeOptions = {}): Promise<string> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxOutput = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const binary = options.binary ?? toolPath("kustomize");

  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new KustomizeFailure("build cancelled", true));
      return;
    }
    const child = spawn(binary, ["build", "--load-restrictor", "LoadRestrictionsNone", dir], {
      cwd: workspaceRoot,
      env: { HOME: workspaceRoot, TMPDIR: workspaceRoot },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = "";
    let stopped: string | undefined;

    const stop = (why: string) => {
      if (stopped) return;
      stopped = why;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(() => stop(`kustomize did not finish within ${Math.round(timeoutMs / 1000)}s`), timeoutMs);
    const onAbort = () => stop("build cancelled");
    options.signal?.addEventListener("abort", onAbort, { once: true });

    child.stdout.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxOutput) stop(`kustomize output exceeds ${maxOutput} bytes`);
      else stdout.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      if (stderr.length < MAX_STDERR) stderr += chunk.toString("utf8");
    });

    const finish = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    };
    child.on("error", (err: NodeJS.ErrnoException) => {
      finish();
      const hint = err.code === "ENOENT" ? ` (binary "${binary}" not found; run hack/tools.sh or set STAGESET_KUSTOMIZE_BIN)` : "";
      reject(new KustomizeFailure(`cannot run kustomize: ${err.message}${hint}`, true, { cause: err }));
    });
    child.on("close", (code) => {
      finish();
      if (stopped) reject(new KustomizeFailure(stopped, true));
      else if (code !== 0) reject(new KustomizeFailure(summarizeStderr(stderr) || `kustomize exited with code ${code}`));
      else resolve(Buffer.concat(stdout).toString("utf8"));
    });
  });
}

/** kustomize prints `Error: <message>` and sometimes usage text; keep the message. */
function summarizeStderr(stderr: string): string {
  const lines = stderr.split("\n").map((line) => line.trimEnd()).filter(Boolean);
  const errorLine = lines.findIndex((line) => line.startsWith("Error: "));
  const relevant = errorLine >= 0 ? lines.slice(errorLine) : lines;
  return relevant.join("; ").replace(/^Error: /, "");
}

import { spawn } from "node:child_process";
import { toolPath } from "../util/tools.js";

export interface KustomizeOptions {
  /** Kill the build after this long. Default 60 s. */
  timeoutMs?: number;
  /** Refuse output larger than this. Default 256 MiB. */
  maxOutputBytes?: number;
  /** The build's memory budget (kbuild --max-memory). Default 1 GiB. */
  maxMemoryBytes?: number;
  signal?: AbortSignal;
  /** The binary; default `toolPath("kbuild")` (tools/kbuild). */
  binary?: string;
}

/**
 * What runKustomize returns: "yaml", `kustomize build`'s output (the
 * default), or "json-lines", one JSON object per line holding the values
 * that YAML is converted from (kustomize renders each object to JSON first).
 */
export type RenderedFormat = "yaml" | "json-lines";

/** The kustomization to build `dir` with instead of the one on disk. */
export interface KustomizationOverride {
  /** Its file name (kustomization.yaml, kustomization.yml or Kustomization). */
  name: string;
  text: string;
}

/** The build failed; `message` is its own explanation, or why it was stopped. */
export class KustomizeFailure extends Error {
  constructor(
    message: string,
    /** Stopped by us (timeout, cancellation, output cap, memory budget) rather than failing on its input. */
    readonly stopped = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024;
export const DEFAULT_MAX_MEMORY = 1024 * 1024 * 1024;
const MAX_STDERR = 64 * 1024;
/** kbuild's exit code when it exceeded its memory budget. */
const EXIT_MEMORY = 3;

/**
 * Runs `kustomize build` on `dir` (inside `root`) and returns the rendered
 * YAML (or JSON lines, see RenderedFormat), with kbuild (tools/kbuild): the kustomize API (the version of the
 * pinned kustomize, builtin plugins only, LoadRestrictionsNone as in Flux)
 * on a filesystem confined to `root`. Every path kustomize reads is resolved,
 * symbolic links included, and refused unless it stays inside the artifact;
 * remote resources are refused and the process has no network or `git`; a
 * memory budget bounds it (see docs/architecture.md, "Build confinement").
 *
 * `kustomization` replaces the kustomization of `dir` (passed on stdin), so
 * a generated or patched kustomization never has to be written next to the
 * read-only artifact.
 *
 * The child gets an empty environment apart from GOTRACEBACK=none, so no
 * controller credentials or proxy settings reach a tenant's build and a Go
 * runtime failure is one line, not a stack dump.
 */
export function runKustomize(
  root: string,
  dir: string,
  options: KustomizeOptions & { kustomization?: KustomizationOverride; files?: ReadonlyMap<string, Buffer>; output?: RenderedFormat } = {},
): Promise<string> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxOutput = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const maxMemory = options.maxMemoryBytes ?? DEFAULT_MAX_MEMORY;
  const binary = options.binary ?? toolPath("kbuild");

  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new KustomizeFailure("build cancelled", true));
      return;
    }
    const args = [`--max-memory=${Math.floor(maxMemory)}`];
    if (options.output === "json-lines") args.push("--output=json");
    // Replaced file contents (decrypted SOPS files) travel on stdin as JSON, so they never touch disk.
    const overlay = options.files && options.files.size > 0 ? stdinOverlay(options.kustomization, options.files) : undefined;
    if (overlay) args.push("--stdin-json");
    else if (options.kustomization) args.push(`--kustomization=${options.kustomization.name}`);
    args.push("--", root, dir);
    const child = spawn(binary, args, {
      cwd: root,
      env: { GOTRACEBACK: "none" },
      stdio: ["pipe", "pipe", "pipe"],
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
    const timer = setTimeout(() => stop(`the build did not finish within ${Math.round(timeoutMs / 1000)}s`), timeoutMs);
    const onAbort = () => stop("build cancelled");
    options.signal?.addEventListener("abort", onAbort, { once: true });

    // A child that exits before reading all of stdin (it failed early) is not an error here.
    child.stdin.on("error", () => undefined);
    child.stdin.end(overlay ?? options.kustomization?.text ?? "");
    child.stdout.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxOutput) stop(`the build output exceeds ${maxOutput} bytes`);
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
      const hint = err.code === "ENOENT" ? ` (binary "${binary}" not found; run hack/tools.sh or set STAGESET_KBUILD_BIN)` : "";
      reject(new KustomizeFailure(`cannot run the build helper: ${err.message}${hint}`, true, { cause: err }));
    });
    child.on("close", (code, signal) => {
      finish();
      if (stopped) reject(new KustomizeFailure(stopped, true));
      else if (code === 0) resolve(Buffer.concat(stdout).toString("utf8"));
      else {
        const message = summarizeStderr(stderr, maxMemory) || (signal ? `the build was killed by ${signal}` : `the build exited with code ${code}`);
        reject(new KustomizeFailure(message, code === EXIT_MEMORY || isRuntimeLimit(stderr)));
      }
    });
  });
}

/** A Go runtime failure that means the input exceeded a limit (memory or stack), not that it is wrong. */
function isRuntimeLimit(stderr: string): boolean {
  return /^fatal error: (runtime: out of memory|stack overflow)/m.test(stderr) || /^runtime: (out of memory|goroutine stack exceeds)/m.test(stderr);
}

/**
 * kbuild prints one `Error: <message>` line (after any kustomize warnings).
 * The Go runtime, when it gives up (out of memory, stack overflow, a panic
 * outside the build), prints `fatal error: …` or `panic: …` and a stack dump:
 * that becomes one clear line, never the dump.
 */
export function summarizeStderr(stderr: string, maxMemory = DEFAULT_MAX_MEMORY): string {
  const lines = stderr.split("\n").map((line) => line.trimEnd()).filter(Boolean);
  const errorLine = lines.find((line) => line.startsWith("Error: "));
  if (errorLine) return errorLine.slice("Error: ".length);
  if (/out of memory|cannot allocate memory/.test(stderr)) {
    return `the build exceeded its memory limit of ${Math.round(maxMemory / (1024 * 1024))} MiB (a YAML alias bomb, or an input too large to build)`;
  }
  if (/stack overflow|goroutine stack exceeds/.test(stderr)) {
    return "the build input is nested too deeply (the build's stack limit was exceeded)";
  }
  const fatal = lines.find((line) => line.startsWith("fatal error: ") || line.startsWith("panic: "));
  if (fatal) return `the build failed unexpectedly: ${fatal.replace(/^(fatal error|panic): /, "")}`;
  // Anything else: its first lines, never a runtime stack.
  return lines
    .filter((line) => !/^(goroutine \d+|runtime stack:|\s)/.test(line))
    .slice(0, 3)
    .join("; ");
}

/**
 * kbuild's `--stdin-json` input: the stage's kustomization and the files
 * whose contents replace the artifact's (root-relative paths), base64 as Go's
 * encoding/json reads `[]byte`.
 */
function stdinOverlay(kustomization: KustomizationOverride | undefined, files: ReadonlyMap<string, Buffer>): Buffer {
  const payload = {
    kustomization: kustomization ? { name: kustomization.name, data: Buffer.from(kustomization.text, "utf8").toString("base64") } : null,
    files: Object.fromEntries([...files].map(([path, data]) => [path, data.toString("base64")])),
  };
  return Buffer.from(JSON.stringify(payload), "utf8");
}

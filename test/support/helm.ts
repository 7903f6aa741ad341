import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "../../src/api/types.js";
import { repoRoot, toolPath } from "../../src/util/tools.js";

/** The chart under test. */
export const CHART_DIR = join(repoRoot(), "charts", "stageset-controller");

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

// helm's config, cache and data go to a directory of this process, so parallel test files never share a lock.
let helmHome: string | undefined;
function helmEnv(kubeconfig?: string): NodeJS.ProcessEnv {
  helmHome ??= mkdtempSync(join(tmpdir(), "stageset-helm-"));
  for (const dir of ["config", "cache", "data"]) mkdirSync(join(helmHome, dir), { recursive: true });
  return {
    ...process.env,
    HELM_CONFIG_HOME: join(helmHome, "config"),
    HELM_CACHE_HOME: join(helmHome, "cache"),
    HELM_DATA_HOME: join(helmHome, "data"),
    ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}),
  };
}

/** Runs a binary to completion; never rejects for a non-zero exit (the caller asserts on it). */
export function run(binary: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${binary}: ${err.message} (run hack/tools.sh)`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `helm <args>`; with `kubeconfig`, against that cluster. */
export function helm(args: string[], options: { kubeconfig?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(toolPath("helm"), args, { env: helmEnv(options.kubeconfig), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
}

/** Values as repeated `--set-json key=<json>` flags (exact types, no string coercion). */
export function setJson(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([key, value]) => ["--set-json", `${key}=${JSON.stringify(value)}`]);
}

export interface RenderOptions {
  release: string;
  namespace: string;
  /** Values files (paths). */
  valuesFiles?: string[];
  /** Values by dotted key. */
  values?: Record<string, unknown>;
}

export function templateArgs(options: RenderOptions): string[] {
  return [
    options.release,
    CHART_DIR,
    "--namespace",
    options.namespace,
    ...(options.valuesFiles ?? []).flatMap((file) => ["--values", file]),
    ...setJson(options.values ?? {}),
  ];
}

/** `helm template`: the rendered objects, in helm's install order. Throws with helm's message when it fails. */
export async function renderChart(options: RenderOptions): Promise<KubeObject[]> {
  const result = await helm(["template", ...templateArgs(options)]);
  if (result.code !== 0) throw new Error(`helm template failed (${result.code}): ${result.stderr}`);
  return parseObjects(result.stdout);
}

/** Every non-empty YAML document of a multi-document stream. */
export function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`invalid YAML from helm: ${doc.errors[0]!.message}`);
      return doc.toJS() as KubeObject | null;
    })
    .filter((obj): obj is KubeObject => obj !== null && typeof obj === "object");
}

export function findObject(objects: KubeObject[], kind: string, name?: string): KubeObject | undefined {
  return objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

export function mustFind(objects: KubeObject[], kind: string, name?: string): KubeObject {
  const found = findObject(objects, kind, name);
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ""} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`);
  return found;
}

/** The reference setups of the Production guide and the other example values (charts/stageset-controller/ci/). */
export const VALUES_FILES = ["onprem-values.yaml", "eks-values.yaml", "flux-values.yaml", "jaas-values.yaml", "everything-values.yaml"].map((name) =>
  join(CHART_DIR, "ci", name),
);

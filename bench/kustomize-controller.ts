// Benchmarks against Flux's kustomize-controller (v1.9.6, built from its
// module by hack/tools.sh), measured side by side on the same control plane
// in one run. Both controllers run as processes of their own, watching a
// namespace of their own, fed the same artifacts from one loopback server as
// ExternalArtifacts (kustomize-controller with its ExternalArtifact feature
// gate). Each round starts a fresh process per contender, so every first
// apply meets empty caches; contenders alternate within a round.
//
// B1 first apply: one stage of OBJECTS ConfigMaps (one ExternalArtifact) to
//    Ready, vs one Kustomization of the same artifact with `wait: true`
//    (kustomize-controller with default flags, and with --concurrent-ssa=10).
//    Time from the create to Ready (seen through a watch), API requests by
//    verb (the API server's apiserver_request_total, before/after, the
//    benchmark's own create taken off), CPU of the controller process with
//    its children (our kbuild builds), peak and final RSS of the process tree.
// B2 no-op reconcile: `reconcile.fluxcd.io/requestedAt` on the same object,
//    until status.lastHandledReconcileAt echoes it: time and requests.
//    Then the correctness check: a revision that drops one key of one object
//    must drop it from the live object, for both.
// B3 scale: N StageSets × 3 stages × 20 ConfigMaps vs N × 3 Kustomizations
//    chained by dependsOn (kustomize-controller default, and with
//    --requeue-dependency=5s): time from the first create to all Ready, CPU,
//    peak RSS.
// B4 floor: a bare server-side-apply client sending the same OBJECTS objects,
//    10 at a time (our apply concurrency), in rounds between B1's: in a new
//    Node process each round (as B1 starts our controller) and in this
//    process; our B1 time as a ratio of each; and the same client sending
//    them with the labels our controller adds.
//
// Environment: BENCH_KC_OBJECTS (1000), BENCH_KC_ROUNDS (3), BENCH_KC_SCALE
// (StageSet counts for B3, comma-separated; default "100"; "100,500" adds the
// long run), BENCH_KC_SCALE_ROUNDS (3), BENCH_KC_ONLY (b1,b3,b4: B2 and the
// correctness check ride on B1), BENCH_KC_B3_DEFAULT_FLAGS=1 (B3 also against
// kustomize-controller with its default flags, whose 30 s --requeue-dependency
// makes each run minutes of waiting; off by default to keep `make bench` near
// 20 minutes), BENCH_CPU_PROF (a directory: our controller
// runs under `node --cpu-prof` in B1 and writes its profiles there),
// BENCH_WRITE_DOCS=0 (do not rewrite docs/performance.md), BENCH_KC_LOG_DIR (keep
// each controller's log there), BENCH_OUR_NODE_ARGS (node flags for our
// controller, e.g. "--heap-prof --heap-prof-dir=/tmp/hp"), BENCH_OUR_ARGS (its
// own flags, e.g. "--log-level=debug"), BENCH_KC_B3_PEERS=0
// (B3 runs ours alone: for profiling, not for the table), BENCH_KC_B1_PEERS=0
// (the same for B1).
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import type { KubeConfig } from "@kubernetes/client-node";
import type { KubeObject, Stage, StageSet } from "../src/api/types.js";
import { memberLabels } from "../src/apply/inventory.js";
import { managedLabels } from "../src/apply/objects.js";
import { buildStage } from "../src/build/index.js";
import { runKustomize } from "../src/build/kustomize.js";
import { KubeClient } from "../src/kube/client.js";
import { Informer } from "../src/kube/informer.js";
import { repoRoot } from "../src/util/tools.js";
import { ArtifactServer, type PublishedArtifact } from "../test/support/artifact-server.js";
import { createTestNamespace, type TestCluster } from "../test/support/cluster.js";
import { publishExternalArtifact } from "../test/support/flux.js";
import { ensureKustomizationCrd, KUSTOMIZATION_API_VERSION, KustomizeController } from "../test/support/kustomize-controller.js";
import { STAGESET } from "../test/support/pipeline.js";
import { waitFor } from "../test/support/wait.js";
import { byVerb, diffCounts, requestTotals, settledTotals, subtract, total, type RequestCounts } from "./lib/apiserver-metrics.js";
import { applyAllBare, bulkArtifactFiles, floorObjects, generatedKustomization } from "./lib/floor.js";
import { OurController } from "./lib/our-controller.js";
import { PhaseMeter } from "./lib/process-stats.js";

type Print = (line: string) => void;

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const TIMEOUT_MS = 900_000;

export interface KcBenchOptions {
  objects: number;
  rounds: number;
  scale: number[];
  scaleRounds: number;
  only: Set<string>;
  cpuProfileDir?: string;
  writeDocs: boolean;
  /** B1: which kustomize-controller variants run beside ours (default both: default flags and --concurrent-ssa=10). */
  kcVariants?: Record<string, string[]>;
  /** B3: which kustomize-controller variants run beside ours (default: --requeue-dependency=5s). */
  scaleVariants?: Record<string, string[]>;
  /** How request counts are judged settled (default: unchanged over 3 reads 500 ms apart, at most 20 s). */
  settle?: { intervalMs?: number; stableReads?: number; timeoutMs?: number };
}

export function kcBenchOptionsFromEnv(): KcBenchOptions {
  return {
    objects: num("BENCH_KC_OBJECTS", 1000),
    rounds: num("BENCH_KC_ROUNDS", 3),
    scale: (process.env.BENCH_KC_SCALE ?? "100")
      .split(",")
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0),
    scaleRounds: num("BENCH_KC_SCALE_ROUNDS", 3),
    only: new Set((process.env.BENCH_KC_ONLY ?? "b1,b3,b4").split(",").map((s) => s.trim().toLowerCase())),
    ...(process.env.BENCH_CPU_PROF ? { cpuProfileDir: process.env.BENCH_CPU_PROF } : {}),
    writeDocs: process.env.BENCH_WRITE_DOCS !== "0",
    ...(process.env.BENCH_KC_B1_PEERS === "0" ? { kcVariants: {} } : {}),
    scaleVariants:
      process.env.BENCH_KC_B3_PEERS === "0"
        ? {}
        : process.env.BENCH_KC_B3_DEFAULT_FLAGS === "1"
          ? { KC: [], "KC requeue=5s": ["--requeue-dependency=5s"] }
          : { "KC requeue=5s": ["--requeue-dependency=5s"] },
  };
}

// --- artifacts -----------------------------------------------------------------


/** Stage `stage` of set `set` in B3: 20 ConfigMaps with names of their own. */
function scaleFiles(set: number, stage: number): Record<string, string> {
  const docs = Array.from(
    { length: 20 },
    (_, k) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s${set}-${stage}-${k}\ndata:\n  value: "${set}-${stage}-${k}"\n  payload: "${"y".repeat(128)}"\n`,
  );
  return { "configmaps.yaml": docs.join("---\n") };
}

// --- contenders ----------------------------------------------------------------

interface Process {
  readonly pid: number | undefined;
  readonly name: string;
  readonly output: string;
  stop(): Promise<void>;
}

/** With BENCH_KC_LOG_DIR, each controller's log (its last MB) is kept there, named by phase and namespace. */
async function stopAndKeepLog(proc: Process, phase: string, namespace: string): Promise<void> {
  await proc.stop();
  const dir = process.env.BENCH_KC_LOG_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${phase}-${namespace}-${proc.name}.log`), proc.output);
}

interface Contender {
  label: string;
  kind: "ours" | "kc";
  start(namespace: string, options?: { cpuProfileDir?: string }): Promise<Process>;
}

function contenders(cluster: TestCluster, kcArgs: Record<string, string[]>): Contender[] {
  const ours: Contender = {
    label: "ours",
    kind: "ours",
    async start(namespace, options = {}) {
      const nodeArgs = process.env.BENCH_OUR_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
      const extraArgs = process.env.BENCH_OUR_ARGS?.split(" ").filter(Boolean) ?? [];
      const c = new OurController({ kubeconfigPath: cluster.kubeconfigPath, namespace, nodeArgs, extraArgs, ...(options.cpuProfileDir ? { cpuProfileDir: options.cpuProfileDir } : {}) });
      await c.start();
      return c;
    },
  };
  return [
    ours,
    ...Object.entries(kcArgs).map(
      ([label, extraArgs]): Contender => ({
        label,
        kind: "kc",
        async start(namespace) {
          const c = new KustomizeController({ kubeconfigPath: cluster.kubeconfigPath, namespace, extraArgs });
          await c.start();
          return c;
        },
      }),
    ),
  ];
}

const targetKind = (c: Contender) => (c.kind === "ours" ? { apiVersion: STAGESET.apiVersion, kind: "StageSet", resource: "stagesets" } : { apiVersion: KUSTOMIZATION_API_VERSION, kind: "Kustomization", resource: "kustomizations" });

type Target = KubeObject & {
  status?: {
    observedGeneration?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    lastAppliedRevisions?: Record<string, string>;
    lastAppliedRevision?: string;
    lastHandledReconcileAt?: string;
  };
};

/** Ready at the current generation (and at `revision` of source `source`, when given). */
function isReady(c: Contender, obj: Target | undefined, source?: { namespace: string; name: string; revision: string }): boolean {
  if (!obj) return false;
  const ready = obj.status?.conditions?.find((x) => x.type === "Ready");
  if (ready?.status !== "True" || obj.status?.observedGeneration !== obj.metadata.generation) return false;
  if (!source) return true;
  return c.kind === "ours" ? obj.status?.lastAppliedRevisions?.[`${source.namespace}/${source.name}`] === source.revision : obj.status?.lastAppliedRevision === source.revision;
}

function failureOf(obj: Target | undefined): string | undefined {
  const ready = obj?.status?.conditions?.find((x) => x.type === "Ready");
  const stalled = obj?.status?.conditions?.find((x) => x.type === "Stalled");
  if (stalled?.status === "True") return `${obj?.metadata.name}: stalled: ${stalled.message}`;
  if (ready?.status === "False" && /Failed|Invalid|RBAC/.test(ready.reason ?? "")) return `${obj?.metadata.name}: ${ready.reason}: ${ready.message}`;
  return undefined;
}

function stageSetSpec(sources: string[], interval = "1h"): StageSet["spec"] {
  return { interval, stages: sources.map((name, i) => ({ name: sources.length === 1 ? "bulk" : `st${i}`, sourceRef: { name } })) } as StageSet["spec"];
}

function kustomizationSpec(namespace: string, source: string, dependsOn?: string): Record<string, unknown> {
  return {
    interval: "1h",
    sourceRef: { kind: "ExternalArtifact", name: source },
    path: "./",
    prune: true,
    wait: true,
    timeout: "10m",
    targetNamespace: namespace,
    ...(dependsOn ? { dependsOn: [{ name: dependsOn }] } : {}),
  };
}

// --- samples ---------------------------------------------------------------------

interface ApplySample {
  seconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
  rssBytes: number;
  requests: RequestCounts;
}

interface B1Sample {
  first: ApplySample;
  /** Ours only: seconds per stage phase up to the first Ready (build, apply, verify, ...). */
  phases?: Record<string, number>;
  noop: ApplySample;
  /** The key a second revision drops is gone from the live object. */
  keyRemoved: boolean;
}

async function namespaceFor(cluster: TestCluster, client: KubeClient, prefix: string): Promise<string> {
  const namespace = await createTestNamespace(cluster, prefix);
  // kube-controller-manager publishes kube-root-ca.crt into every new namespace: let that land before anything is measured.
  await waitFor(() => client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "kube-root-ca.crt" }), {
    description: `kube-root-ca.crt in ${namespace}`,
    timeoutMs: 30_000,
    intervalMs: 50,
  });
  return namespace;
}

/**
 * Deletes a round's namespace once its controller has stopped, and waits
 * until it is gone: the next contender meets the same store, not one grown
 * by every round before it (B3 at 500 leaves 30,000 ConfigMaps per round).
 * The stopped controller can no longer clear its finalizers, so they are
 * dropped first.
 */
async function removeNamespace(client: KubeClient, namespace: string, kinds: Array<{ apiVersion: string; kind: string }>): Promise<void> {
  for (const { apiVersion, kind } of kinds) {
    const { items } = await client.listAll(apiVersion, kind, { namespace }).catch(() => ({ items: [] as KubeObject[] }));
    const held = items.filter((o) => (o.metadata.finalizers ?? []).length > 0);
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < held.length) {
          const o = held[next++]!;
          await client.patch({ apiVersion, kind, namespace, name: o.metadata.name! }, { metadata: { finalizers: null } }, "merge").catch(() => undefined);
        }
      }),
    );
  }
  await client.delete({ apiVersion: "v1", kind: "Namespace", name: namespace });
  await waitFor(async () => (await client.get({ apiVersion: "v1", kind: "Namespace", name: namespace })) === undefined, {
    description: `namespace ${namespace} deleted`,
    timeoutMs: 15 * 60_000,
    intervalMs: 500,
  });
}

async function watchKind<T extends KubeObject>(client: KubeClient, apiVersion: string, kind: string, namespace: string): Promise<Informer<T>> {
  const informer = new Informer<T>(client, { apiVersion, kind, namespaces: [namespace] });
  informer.start();
  await informer.waitForSync();
  return informer;
}

let settleOptions: KcBenchOptions["settle"] = {};

async function measure(kubeConfig: KubeConfig, pid: number, action: () => Promise<void>, settle: () => Promise<unknown>, ownRequests: [string, number][]): Promise<ApplySample> {
  const before = await settledTotals(kubeConfig, settleOptions);
  const meter = new PhaseMeter(pid);
  const started = performance.now();
  await action();
  await settle();
  const seconds = (performance.now() - started) / 1000;
  const used = meter.stop();
  let requests = diffCounts(await settledTotals(kubeConfig, settleOptions), before);
  for (const [key, count] of ownRequests) requests = subtract(requests, key, count);
  return { seconds, ...used, requests };
}

async function b1Round(cluster: TestCluster, client: KubeClient, server: ArtifactServer, c: Contender, objects: number, cpuProfileDir: string | undefined): Promise<B1Sample> {
  const namespace = await namespaceFor(cluster, client, `bench-b1-${c.kind}`);
  const t = targetKind(c);
  const rev1 = server.add(`${namespace}-bulk`, bulkArtifactFiles(objects, true), `rev-1@${namespace}`);
  await publishExternalArtifact(client, namespace, "bulk", rev1);
  const proc = await c.start(namespace, cpuProfileDir ? { cpuProfileDir } : {});
  const informer = await watchKind<Target>(client, t.apiVersion, t.kind, namespace);
  try {
    const ref = { apiVersion: t.apiVersion, kind: t.kind, namespace, name: "bulk" };
    const waitReady = (what: string, accept: (obj: Target | undefined) => boolean) =>
      waitFor(
        () => {
          const obj = informer.get(namespace, "bulk");
          const failed = failureOf(obj);
          if (failed) throw new Error(`${c.label}: ${failed}`);
          return accept(obj);
        },
        { description: `${c.label} ${what}`, timeoutMs: TIMEOUT_MS, intervalMs: 10 },
      );
    const source = (rev: PublishedArtifact) => ({ namespace, name: "bulk", revision: rev.revision });

    const first = await measure(
      cluster.kubeConfig,
      proc.pid!,
      async () => {
        await client.create({ ...ref, metadata: { name: "bulk", namespace }, spec: c.kind === "ours" ? stageSetSpec(["bulk"]) : kustomizationSpec(namespace, "bulk") } as KubeObject);
      },
      () => waitReady("first apply Ready", (obj) => isReady(c, obj, source(rev1))),
      [[`POST ${t.resource}`, 1]],
    );

    const phases = proc instanceof OurController ? await proc.phaseSeconds() : undefined;

    const token = `noop-${Date.now()}`;
    const noop = await measure(
      cluster.kubeConfig,
      proc.pid!,
      async () => {
        await client.patch(ref, { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": token } } }, "merge");
      },
      () => waitReady("no-op reconcile handled", (obj) => obj?.status?.lastHandledReconcileAt === token && isReady(c, obj, source(rev1))),
      [[`PATCH ${t.resource}`, 1]],
    );

    // Correctness: revision 2 drops cm-0's `removeme`.
    const rev2 = server.add(`${namespace}-bulk`, bulkArtifactFiles(objects, false), `rev-2@${namespace}`);
    await publishExternalArtifact(client, namespace, "bulk", rev2);
    await waitReady("revision 2 Ready", (obj) => isReady(c, obj, source(rev2)));
    const cm0 = await client.get<KubeObject & { data?: Record<string, string> }>({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "cm-0" });
    return { first, noop, keyRemoved: cm0?.data !== undefined && !("removeme" in cm0.data), ...(phases ? { phases } : {}) };
  } finally {
    await informer.stop();
    await stopAndKeepLog(proc, "b1", namespace);
    await removeNamespace(client, namespace, [t]);
  }
}

/**
 * One B4 round: `objects` server-side applies, `concurrency` at a time, by a
 * fresh client in this process. `labelled` adds the labels our controller
 * stamps on a B1 stage's objects (src/apply: the owner and stage labels and,
 * in the default hybrid inventory mode, the ApplySet member label), so the
 * API server is sent what it is sent in B1 with nothing else done around it.
 */
async function b4Round(cluster: TestCluster, client: KubeClient, objects: number, concurrency: number, labelled: boolean): Promise<number> {
  const namespace = await namespaceFor(cluster, client, labelled ? "bench-b4-labelled" : "bench-b4-floor");
  const plain = floorObjects(objects, namespace);
  const owner = { name: "bulk", namespace };
  const ourLabels = { ...memberLabels("hybrid", owner, "bulk"), ...managedLabels(owner, "bulk") };
  const desired = labelled ? plain.map((o) => ({ ...o, metadata: { ...o.metadata, labels: { ...o.metadata.labels, ...ourLabels } } })) : plain;
  const floor = KubeClient.fromKubeConfig(cluster.kubeConfig);
  try {
    const started = performance.now();
    await applyAllBare(floor, desired, concurrency);
    return (performance.now() - started) / 1000;
  } finally {
    floor.close();
    await removeNamespace(client, namespace, []);
  }
}

interface FreshFloorRound {
  round: number;
  seconds: number;
  cpuSeconds: number;
  /** The design's floor only: seconds of its kustomize build (with the parse), and of its StageInventory write. */
  buildSeconds?: number;
  inventorySeconds?: number;
}

/** Rounds of the floor in one fresh process: the first is cold, the last warm. */
const FRESH_FLOOR_ROUNDS = 4;

/**
 * Runs bench/lib/floor-process.ts in a new node process for `rounds` rounds
 * of `objects` objects, the bare floor or the design's floor (`mode`); its
 * rounds in order.
 */
async function floorInFreshProcess(cluster: TestCluster, objects: number, rounds: number, mode: "bare" | "design" = "bare"): Promise<FreshFloorRound[]> {
  const script = join(repoRoot(), "dist", "bench", "lib", "floor-process.js");
  const { stdout } = await promisify(execFile)(process.execPath, [script, cluster.kubeconfigPath, String(objects), String(rounds), mode], {
    timeout: 30 * 60_000,
    maxBuffer: 1024 * 1024,
  });
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as FreshFloorRound);
}

/**
 * What a build of the B1 stage costs on its own, in this process: kbuild
 * (the kustomize child process, JSON lines as buildStage asks for them) alone,
 * and buildStage (kbuild plus parsing and checking the rendered objects),
 * `rounds` times each.
 */
async function buildCost(objects: number, rounds: number): Promise<{ kbuild: Stats; buildStage: Stats }> {
  const root = mkdtempSync(join(tmpdir(), "bench-build-"));
  try {
    for (const [name, text] of Object.entries(bulkArtifactFiles(objects, true))) writeFileSync(join(root, name), text);
    const kustomization = await generatedKustomization(root);
    const kbuild: number[] = [];
    const stage: number[] = [];
    for (let i = 0; i < rounds; i++) {
      let t = performance.now();
      await runKustomize(root, root, { kustomization, output: "json-lines" });
      kbuild.push((performance.now() - t) / 1000);
      t = performance.now();
      const built = await buildStage({ root, stageIndex: 0, stage: { name: "bulk", sourceRef: { name: "bulk" } } as Stage, namespace: "bench" });
      stage.push((performance.now() - t) / 1000);
      if (built.length !== objects) throw new Error(`buildStage rendered ${built.length} objects, expected ${objects}`);
    }
    return { kbuild: stats(kbuild), buildStage: stats(stage) };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

interface ScaleSample {
  seconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
}

async function b3Round(cluster: TestCluster, client: KubeClient, server: ArtifactServer, c: Contender, sets: number): Promise<ScaleSample> {
  const namespace = await namespaceFor(cluster, client, `bench-b3-${c.kind}`);
  const t = targetKind(c);
  const revisions = new Map<string, string>();
  const sources = Array.from({ length: sets * 3 }, (_, n) => [Math.floor(n / 3), n % 3] as const);
  let nextSource = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (nextSource < sources.length) {
        const [i, j] = sources[nextSource++]!;
        const name = `a${i}-${j}`;
        const artifact = server.add(`${namespace}-${name}`, scaleFiles(i, j), `r1@${namespace}-${name}`);
        revisions.set(name, artifact.revision);
        await publishExternalArtifact(client, namespace, name, artifact);
      }
    }),
  );
  const proc = await c.start(namespace);
  const informer = await watchKind<Target>(client, t.apiVersion, t.kind, namespace);
  try {
    const meter = new PhaseMeter(proc.pid!);
    const started = performance.now();
    const creates: KubeObject[] = [];
    for (let i = 0; i < sets; i++) {
      if (c.kind === "ours") {
        creates.push({ ...STAGESET, metadata: { name: `s${i}`, namespace }, spec: stageSetSpec([0, 1, 2].map((j) => `a${i}-${j}`)) } as KubeObject);
      } else {
        for (const j of [0, 1, 2]) {
          creates.push({ apiVersion: t.apiVersion, kind: t.kind, metadata: { name: `k${i}-${j}`, namespace }, spec: kustomizationSpec(namespace, `a${i}-${j}`, j > 0 ? `k${i}-${j - 1}` : undefined) } as KubeObject);
        }
      }
    }
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < creates.length) await client.create(creates[next++]!);
      }),
    );
    const expected = creates.length;
    await waitFor(
      () => {
        let ready = 0;
        for (const obj of informer.list(namespace)) {
          const failed = failureOf(obj);
          if (failed) throw new Error(`${c.label}: ${failed}`);
          if (c.kind === "ours") {
            if (isReady(c, obj) && [0, 1, 2].every((j) => obj.status?.lastAppliedRevisions?.[`${namespace}/a${obj.metadata.name!.slice(1)}-${j}`] !== undefined)) ready++;
          } else {
            const source = (obj.spec as { sourceRef: { name: string } }).sourceRef.name;
            if (isReady(c, obj, { namespace, name: source, revision: revisions.get(source)! })) ready++;
          }
        }
        return ready === expected;
      },
      { description: `${c.label}: ${expected} ${t.kind}s Ready`, timeoutMs: TIMEOUT_MS, intervalMs: 100 },
    );
    const seconds = (performance.now() - started) / 1000;
    const used = meter.stop();
    return { seconds, cpuSeconds: used.cpuSeconds, peakRssBytes: used.peakRssBytes };
  } finally {
    await informer.stop();
    await stopAndKeepLog(proc, `b3-${sets}`, namespace);
    await removeNamespace(client, namespace, [t]);
  }
}

// --- statistics and report ---------------------------------------------------------

interface Stats {
  min: number;
  median: number;
  max: number;
}

function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0]!, median: sorted[Math.floor((sorted.length - 1) / 2)]!, max: sorted.at(-1)! };
}

const MiB = 1024 * 1024;
type Fmt = (n: number) => string;
const secs: Fmt = (n) => (n >= 10 ? n.toFixed(1) : n.toFixed(2));
const mib: Fmt = (n) => (n / MiB).toFixed(0);
const int: Fmt = (n) => n.toFixed(0);
const cell = (s: Stats, f: Fmt) => (s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`);
const ratio = (a: Stats, b: Stats) => {
  const r = a.median / b.median;
  return Number.isFinite(r) ? `${r < 0.1 ? r.toFixed(3) : r.toFixed(2)}×` : "–";
};

interface Row {
  metric: string;
  values: Stats[];
  fmt: Fmt;
}

/** A Markdown table: metric, one column per contender (median (min–max)), then ours/each peer. */
function table(columns: string[], rows: Row[]): string[] {
  const peers = columns.slice(1);
  const head = `| metric | ${columns.join(" | ")} | ${peers.map((p) => `ours/${p}`).join(" | ")} |`;
  const sep = `|${Array.from({ length: 1 + columns.length + peers.length }, () => "---").join("|")}|`;
  const body = rows.map((r) => `| ${r.metric} | ${r.values.map((v) => cell(v, r.fmt)).join(" | ")} | ${r.values.slice(1).map((v) => ratio(r.values[0]!, v)).join(" | ")} |`);
  return [head, sep, ...body];
}

function verbSummary(samples: ApplySample[]): string {
  // The median round (by total), its requests by verb.
  const sorted = [...samples].sort((a, b) => total(a.requests) - total(b.requests));
  const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return Object.entries(byVerb(mid.requests))
    .sort((a, b) => b[1] - a[1])
    .map(([verb, n]) => `${verb} ${n}`)
    .join(", ");
}

export interface KcBenchResult {
  markdown: string[];
  correctness: Record<string, boolean[]>;
}

export async function kustomizeControllerBench(cluster: TestCluster, print: Print, options: KcBenchOptions = kcBenchOptionsFromEnv()): Promise<KcBenchResult> {
  const client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  const server = new ArtifactServer();
  await server.start();
  await ensureKustomizationCrd(client);
  // The first scrape also checks /metrics is readable before anything is measured.
  await requestTotals(cluster.kubeConfig);
  settleOptions = options.settle ?? {};
  const md: string[] = [];
  const correctness: Record<string, boolean[]> = {};
  const started = performance.now();
  try {
    let b1: Map<string, B1Sample[]> | undefined;
    const b1Contenders = contenders(cluster, options.kcVariants ?? { KC: [], "KC ssa=10": ["--concurrent-ssa=10"] });
    if (options.only.has("b1")) b1 = new Map(b1Contenders.map((c) => [c.label, []]));
    // The floor's rounds run between B1's, so drift in the machine's speed
    // over the run reaches both alike.
    const plain: number[] = [];
    const labelled: number[] = [];
    const freshFirst: FreshFloorRound[] = [];
    const designRounds: FreshFloorRound[] = [];
    for (let round = 0; round < options.rounds; round++) {
      for (const c of b1 ? b1Contenders : []) {
        const sample = await b1Round(cluster, client, server, c, options.objects, c.kind === "ours" && round === 0 ? options.cpuProfileDir : undefined);
        b1?.get(c.label)!.push(sample);
        (correctness[c.label] ??= []).push(sample.keyRemoved);
        print(
          `B1 round ${round + 1} ${c.label}: first apply ${secs(sample.first.seconds)}s, cpu ${secs(sample.first.cpuSeconds)}s, peak rss ${mib(sample.first.peakRssBytes)} MiB, ` +
            `${total(sample.first.requests)} requests; no-op ${(sample.noop.seconds * 1000).toFixed(0)}ms, ${total(sample.noop.requests)} requests; key removed: ${sample.keyRemoved}`,
        );
      }
      if (options.only.has("b4")) {
        const [fresh] = await floorInFreshProcess(cluster, options.objects, 1);
        if (!fresh) throw new Error("bench/lib/floor-process.ts printed no round");
        freshFirst.push(fresh);
        const [design] = await floorInFreshProcess(cluster, options.objects, 1, "design");
        if (!design) throw new Error("bench/lib/floor-process.ts printed no round of the design's floor");
        designRounds.push(design);
        plain.push(await b4Round(cluster, client, options.objects, 10, false));
        labelled.push(await b4Round(cluster, client, options.objects, 10, true));
        print(
          `B4 round ${round + 1}: floor in a new process ${secs(fresh.seconds)}s (cpu ${secs(fresh.cpuSeconds)}s), the design's floor in a new process ` +
            `${secs(design.seconds)}s (build ${secs(design.buildSeconds ?? 0)}s, inventory ${secs(design.inventorySeconds ?? 0)}s), ` +
            `in this process ${secs(plain.at(-1)!)}s, with our labels ${secs(labelled.at(-1)!)}s`,
        );
      }
    }

    let floor: Stats | undefined;
    let freshFloor: Stats | undefined;
    let labelledFloor: Stats | undefined;
    let designFloor: Stats | undefined;
    let warmingFloor: FreshFloorRound[] | undefined;
    if (options.only.has("b4")) {
      floor = stats(plain);
      freshFloor = stats(freshFirst.map((r) => r.seconds));
      labelledFloor = stats(labelled);
      designFloor = stats(designRounds.map((r) => r.seconds));
      print(
        `B4 floor: bare server-side apply of ${options.objects} objects, 10 at a time: in a new process ${cell(freshFloor, secs)}s; ` +
          `in this process ${cell(floor, secs)}s; with our labels ${cell(labelledFloor, secs)}s; the design's floor in a new process ${cell(designFloor, secs)}s ` +
          `(${ratio(designFloor, freshFloor)} the floor in a new process)`,
      );
      warmingFloor = await floorInFreshProcess(cluster, options.objects, FRESH_FLOOR_ROUNDS);
      print(`B4 floor, ${FRESH_FLOOR_ROUNDS} rounds in one new process: ${warmingFloor.map((r) => `round ${r.round} ${secs(r.seconds)}s (cpu ${secs(r.cpuSeconds)}s)`).join(", ")}`);
    }

    if (b1) {
      const cols = b1Contenders.map((c) => c.label);
      const pick = (f: (s: B1Sample) => number) => cols.map((l) => stats(b1!.get(l)!.map(f)));
      md.push(
        `### B1 first apply and B2 no-op: one stage of ${options.objects} ConfigMaps (${options.rounds} rounds)`,
        "",
        ...table(cols, [
          { metric: "B1 time to Ready (s)", values: pick((s) => s.first.seconds), fmt: secs },
          { metric: "B1 API requests", values: pick((s) => total(s.first.requests)), fmt: int },
          { metric: "B1 CPU incl. children (s)", values: pick((s) => s.first.cpuSeconds), fmt: secs },
          { metric: "B1 peak RSS (MiB)", values: pick((s) => s.first.peakRssBytes), fmt: mib },
          { metric: "RSS after B1 (MiB)", values: pick((s) => s.first.rssBytes), fmt: mib },
          { metric: "B2 no-op time (ms)", values: pick((s) => s.noop.seconds * 1000), fmt: int },
          { metric: "B2 API requests", values: pick((s) => total(s.noop.requests)), fmt: int },
          { metric: "B2 CPU (s)", values: pick((s) => s.noop.cpuSeconds), fmt: secs },
        ]),
        "",
        "API requests by verb (the median round, from `apiserver_request_total`):",
        "",
        "| contender | B1 first apply | B2 no-op |",
        "|---|---|---|",
        ...cols.map((l) => `| ${l} | ${verbSummary(b1!.get(l)!.map((s) => s.first))} | ${verbSummary(b1!.get(l)!.map((s) => s.noop))} |`),
        "",
        `Correctness (revision 2 drops a key from \`cm-0\`; removed from the live object in every round): ${cols
          .map((l) => `${l} ${correctness[l]!.every(Boolean) ? "yes" : `**no** (${correctness[l]!.filter((x) => !x).length} of ${correctness[l]!.length} rounds kept it)`}`)
          .join(", ")}.`,
        "",
      );
      const build = await buildCost(options.objects, options.rounds);
      md.push(
        `Our build of that stage alone (in the benchmark's process, ${options.rounds} rounds): kbuild (kustomize) ${cell(build.kbuild, secs)}s; ` +
          `with parsing and checking the rendered objects ${cell(build.buildStage, secs)}s.`,
        "",
      );
      if (floor && freshFloor && labelledFloor && designFloor) {
        const ourSamples = b1.get("ours")!;
        const ours = stats(ourSamples.map((s) => s.first.seconds));
        const phase = (name: string) => stats(ourSamples.map((s) => s.phases?.[name] ?? 0));
        const applyPhase = phase("apply");
        const designBuild = stats(designRounds.map((r) => r.buildSeconds ?? 0));
        const designInventory = stats(designRounds.map((r) => r.inventorySeconds ?? 0));
        md.push(
          `### B4 floor: a bare server-side-apply client, ${options.objects} objects, 10 at a time (${options.rounds} rounds, between B1's)`,
          "",
          "| metric | floor | ours | ours/floor |",
          "|---|---|---|---|",
          `| B1 time to Ready, against the floor client in a new process (s) | ${cell(freshFloor, secs)} | ${cell(ours, secs)} | ${ratio(ours, freshFloor)} |`,
          `| B1 time to Ready, against the floor client in the benchmark's warm process (s) | ${cell(floor, secs)} | ${cell(ours, secs)} | ${ratio(ours, floor)} |`,
          `| apply phase alone, against the new process (s) | ${cell(freshFloor, secs)} | ${cell(applyPhase, secs)} | ${ratio(applyPhase, freshFloor)} |`,
          `| the design's floor in a new process: kustomize build, StageInventory, labelled applies (s) | ${cell(freshFloor, secs)} | ${cell(designFloor, secs)} | ${ratio(designFloor, freshFloor)} |`,
          `| B1 time to Ready, against the design's floor (s) | ${cell(designFloor, secs)} | ${cell(ours, secs)} | ${ratio(ours, designFloor)} |`,
          `| the warm floor's applies with our labels (s) | ${cell(floor, secs)} | ${cell(labelledFloor, secs)} | ${ratio(labelledFloor, floor)} |`,
          ...(warmingFloor && warmingFloor.length > 1
            ? [
                `| one new process, its round 1 (s) | ${cell(floor, secs)} | ${secs(warmingFloor[0]!.seconds)} | ${(warmingFloor[0]!.seconds / floor.median).toFixed(2)}× |`,
                `| the same process, round ${warmingFloor.length} (s) | ${cell(floor, secs)} | ${secs(warmingFloor.at(-1)!.seconds)} | ${(warmingFloor.at(-1)!.seconds / floor.median).toFixed(2)}× |`,
              ]
            : []),
          "",
          `Each B1 round starts our controller as a new Node process, so the first row compares it with the floor client in a new process too: ` +
            `each round runs \`bench/lib/floor-process.ts\` once, before the floor in the benchmark's own long-running process (second row, ` +
            `the lower bound for a warm process). The floor client sends the artifact's objects as they are. Ours carry four labels more (the owner, ` +
            `its namespace, the stage, and the ApplySet member label of the default \`hybrid\` inventory mode); the fourth row is the warm floor ` +
            `sending those labels too. The fifth row is the design's floor, also in a new process each round (\`designFloor\` in ` +
            `bench/lib/floor.ts): what any controller keeping our rules must do before its first apply is done, by a bare loop with no ` +
            `controller around it — kbuild renders the artifact (${cell(designBuild, secs)}s with the parse), the ${options.objects}-entry ` +
            `StageInventory is written (${cell(designInventory, secs)}s), then the labelled objects are applied; no StageSet, download, ` +
            `discovery or status. The sixth row is what our controller spends beyond that.` +
            (warmingFloor && warmingFloor.length > 1
              ? ` The last two rows run the floor client for ${warmingFloor.length} rounds in one new process: its first ${options.objects} applies ` +
                `took ${secs(warmingFloor[0]!.seconds)}s and ${secs(warmingFloor[0]!.cpuSeconds)}s of its CPU, its round ${warmingFloor.length} ` +
                `${secs(warmingFloor.at(-1)!.seconds)}s and ${secs(warmingFloor.at(-1)!.cpuSeconds)}s, once V8 had compiled the request path.`
              : ""),
          "",
          `Our B1 by phase (\`stageset_stage_phase_duration_seconds\`): build (fetch, kustomize, parse) ${cell(phase("build"), secs)}s, ` +
            `apply (with the inventory) ${cell(applyPhase, secs)}s, verify ${cell(phase("verify"), secs)}s, prune ${cell(phase("prune"), secs)}s.`,
          "",
        );
      }
    }

    if (options.only.has("b3")) {
      const b3Contenders = contenders(cluster, options.scaleVariants ?? { "KC requeue=5s": ["--requeue-dependency=5s"] });
      for (const sets of options.scale) {
        const samples = new Map<string, ScaleSample[]>(b3Contenders.map((c) => [c.label, []]));
        for (let round = 0; round < options.scaleRounds; round++) {
          for (const c of b3Contenders) {
            const s = await b3Round(cluster, client, server, c, sets);
            samples.get(c.label)!.push(s);
            print(`B3 ${sets} round ${round + 1} ${c.label}: all Ready in ${secs(s.seconds)}s, cpu ${secs(s.cpuSeconds)}s, peak rss ${mib(s.peakRssBytes)} MiB`);
          }
        }
        const cols = b3Contenders.map((c) => c.label);
        const pick = (f: (s: ScaleSample) => number) => cols.map((l) => stats(samples.get(l)!.map(f)));
        md.push(
          `### B3 scale: ${sets} StageSets × 3 stages × 20 ConfigMaps vs ${sets * 3} Kustomizations chained by dependsOn (${options.scaleRounds} rounds)`,
          "",
          ...table(cols, [
            { metric: "time to all Ready (s)", values: pick((s) => s.seconds), fmt: secs },
            { metric: "CPU incl. children (s)", values: pick((s) => s.cpuSeconds), fmt: secs },
            { metric: "peak RSS (MiB)", values: pick((s) => s.peakRssBytes), fmt: mib },
          ]),
          "",
        );
      }
    }
  } finally {
    await server.stop();
    client.close();
  }
  for (const line of md) print(line);
  print(`kustomize-controller benchmarks took ${((performance.now() - started) / 1000).toFixed(0)}s`);
  if (options.writeDocs && md.length > 0) writeDocs(md, options);
  return { markdown: md, correctness };
}

const START = "<!-- generated by `make bench` (bench/kustomize-controller.ts): do not edit by hand -->";
const END = "<!-- end of generated section -->";

/** Replaces the generated section of docs/performance.md. */
function writeDocs(md: string[], options: KcBenchOptions): void {
  const path = join(repoRoot(), "docs", "performance.md");
  const text = readFileSync(path, "utf8");
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  if (from < 0 || to < from) throw new Error(`${path} has no generated section (${START} … ${END})`);
  const when = new Date().toISOString().slice(0, 10);
  const body = [
    START,
    "",
    `Measured ${when} by \`make bench\` against kustomize-controller v1.9.6 on the two-core machine (other work may have run beside it); ` +
      `median (min–max) of the rounds; ratios are of the medians. B3 ran at ${options.scale.join(" and ")} StageSets` +
      ` against ${Object.keys(options.scaleVariants ?? { "KC requeue=5s": [] }).join(" and ")}.`,
    "",
    ...md,
    END,
  ];
  writeFileSync(path, `${text.slice(0, from)}${body.join("\n")}${text.slice(to + END.length)}`);
}

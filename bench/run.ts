// Benchmarks against a peer measured in the same run; prints ratios.
//
// noop-drift-check: how long it takes to establish that a 1000-object stage
// needs no change. Ours lists the managed objects per kind and compares the
// fields we set (src/apply); the peer is the approach of Flux's
// kustomize-controller (fluxcd/pkg/ssa): one server-side dry-run apply per
// object, compared with the live object.
//
// rollback-restore (bench/rollback-restore.ts): restoring a 1000-object stage
// after a failed run from the filesystem and the S3 rollback stores, against
// restoring it from the artifact's producer.
//
// kustomize-controller (bench/kustomize-controller.ts): B1 first apply, B2
// no-op reconcile, B3 scale and B4 floor against Flux's kustomize-controller
// run beside ours on the same control plane; writes its table into
// docs/performance.md.
//
// BENCH_ONLY=noop-drift-check, rollback-restore or kustomize-controller (or a
// comma-separated list) runs only those.
import { performance } from "node:perf_hooks";
import type { KubeObject } from "../src/api/types.js";
import { applyStage } from "../src/apply/engine.js";
import { AppliedStateMemo } from "../src/apply/drift.js";
import { KubeClient } from "../src/kube/client.js";
import { createTestNamespace, testCluster, type TestCluster } from "../test/support/cluster.js";
import { kustomizeControllerBench } from "./kustomize-controller.js";
import { rollbackRestore } from "./rollback-restore.js";

/** Program output (not a log line). */
const print = (line: string): void => void process.stdout.write(`${line}\n`);

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

function objects(namespace: string): KubeObject[] {
  return Array.from({ length: OBJECTS }, (_, i) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `cm-${i}`, namespace, labels: { app: "bench" } },
    data: { index: String(i), payload: "x".repeat(256) },
  }));
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function perObjectDryRun(client: KubeClient, desired: KubeObject[], concurrency: number): Promise<number> {
  let changed = 0;
  let next = 0;
  const worker = async () => {
    while (next < desired.length) {
      const obj = desired[next++]!;
      const dry = await client.apply(obj, { fieldManager: "stageset-controller", force: true, dryRun: true });
      const live = await client.get({ apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name ?? "", namespace: obj.metadata.namespace });
      if (JSON.stringify(dry.data) !== JSON.stringify(live?.data)) changed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return changed;
}

async function noopDriftCheck(cluster: TestCluster): Promise<void> {
  const namespace = await createTestNamespace(cluster, "bench");
  const client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  const desired = objects(namespace);
  const stageSet = { name: "bench", namespace };
  const memo = new AppliedStateMemo();
  const firstApply = await timeIt(() => applyStage({ client, stageSet, stage: "bulk", objects: desired, memo }));
  print(`first apply of ${OBJECTS} objects: ${(firstApply / 1000).toFixed(2)}s`);

  const ours: number[] = [];
  const peer: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    client.resetStats();
    ours.push(await timeIt(() => applyStage({ client, stageSet, stage: "bulk", objects: desired, memo })));
    const oursRequests = client.stats();
    client.resetStats();
    peer.push(await timeIt(() => perObjectDryRun(client, desired, 10)));
    const peerRequests = client.stats();
    if (round === 0) {
      print(`requests per no-op check: ours ${JSON.stringify(oursRequests)}`);
      print(`                          peer ${JSON.stringify(peerRequests)}`);
    }
  }
  const o = median(ours);
  const p = median(peer);
  print(`noop-drift-check (${OBJECTS} objects, median of ${ROUNDS}): ours ${o.toFixed(0)}ms, per-object dry-run ${p.toFixed(0)}ms, ratio ${(p / o).toFixed(1)}x faster`);
  client.close();
}

async function main(): Promise<void> {
  const cluster = await testCluster();
  const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim());
  const wanted = (name: string) => !only || only.includes(name);
  if (wanted("noop-drift-check")) await noopDriftCheck(cluster);
  if (wanted("rollback-restore")) await rollbackRestore(cluster, print);
  if (wanted("kustomize-controller")) await kustomizeControllerBench(cluster, print);
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

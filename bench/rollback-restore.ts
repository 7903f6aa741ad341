// rollback-restore: how long the controller takes to put a 1000-object stage
// back after a failed run, when the good artifact comes from
//   (a) its producer (the artifact server still serves it) — the peer,
//   (b) the filesystem rollback store (--rollback-store-path),
//   (c) the S3 rollback store (SeaweedFS via test/support/s3-server.ts).
//
// Driven through the real controller in-process, as
// test/integration/rollback.test.ts does: a good revision (stage "config":
// 1000 ConfigMaps; stage "app": a healthy Deployment) rolls out, then a bad
// revision changes all 1000 ConfigMaps and makes "app" fail health (an
// unschedulable Deployment, stage timeout 3s), and the controller rolls both
// stages back, ROUNDS times per store (a new bad revision each time, the
// stores' rounds interleaved). Every bad revision meets a newly started
// controller, so its in-memory artifact and build caches are empty in all
// three cases and the good artifact really is fetched (from the producer, or
// for (b) and (c), whose good artifacts the artifact server no longer serves,
// from the store).
//
// What is measured (all timestamps from this process's wall clock, which the
// in-process controller also uses):
//   start:  the controller's "rolling back" log line — written right after the
//           "run failed" line, once the run's failure is known and the restore
//           plan is made (the gap between the two is printed too);
//   end:    status.lastRollback.at — set by #rollBack once every stage is
//           restored (stage "config" and then stage "app", each fetched,
//           built, applied and verified), just before RolledBack is written.
// "restore" = end - start: the whole rollback of the run, the 1000 ConfigMaps
// plus the one-Deployment stage. "1000-object stage" = the moment the last of
// the 1000 ConfigMaps is seen back at its good data (a ConfigMap watch held
// by this process) - start: the part that restores the 1000-object stage.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeObject } from "../src/api/types.js";
import { KubeClient } from "../src/kube/client.js";
import { ArtifactServer } from "../test/support/artifact-server.js";
import { createTestNamespace, type TestCluster } from "../test/support/cluster.js";
import { startTestController } from "../test/support/controller.js";
import { publishExternalArtifact } from "../test/support/flux.js";
import { S3Server } from "../test/support/s3-server.js";
import { getStageSet, readyCondition, STAGESET, waitForReason } from "../test/support/pipeline.js";
import { waitFor } from "../test/support/wait.js";
import { deploymentFile } from "../test/support/workloads.js";

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROLLBACK_ROUNDS ?? 5);
const TIMEOUT_MS = 300_000;

type Store = "producer" | "filesystem" | "s3";

interface Sample {
  /** "run failed" → "rolling back" (ms). */
  failureToStart: number;
  /** "rolling back" → last of the ConfigMaps back at its good data (ms). */
  configStage: number;
  /** "rolling back" → status.lastRollback.at (ms). */
  restore: number;
}

/** One file with OBJECTS ConfigMaps whose data carries `mode`. */
function configMaps(mode: string): Record<string, string> {
  const docs = Array.from(
    { length: OBJECTS },
    (_, i) => `apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-${i}
  labels: {app: bench}
data:
  index: "${i}"
  mode: "${mode}"
  payload: "${"x".repeat(256)}"
`,
  );
  return { "configmaps.yaml": docs.join("---\n") };
}

/** The time of the last JSON log line whose msg is `msg`. */
function logTime(lines: readonly string[], msg: string): number {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = JSON.parse(lines[i]!) as { msg?: string; time?: string };
    if (line.msg === msg) return Date.parse(line.time ?? "");
  }
  throw new Error(`no "${msg}" log line from the controller`);
}

/**
 * Watches the namespace's ConfigMaps; `since(t)` resolves once all OBJECTS
 * have been seen with mode "good" after `t`, to the time the last one was seen.
 */
function watchGood(client: KubeClient, namespace: string, resourceVersion: string) {
  const abort = new AbortController();
  let seen = new Map<string, number>();
  let waiter: { resolve: (t: number) => void } | undefined;
  const done = (async () => {
    for await (const event of client.watch("v1", "ConfigMap", { namespace, resourceVersion, labelSelector: "app=bench", signal: abort.signal })) {
      const data = (event.object as { data?: Record<string, string> }).data;
      if (event.type !== "MODIFIED" || data?.mode !== "good") continue;
      seen.set(event.object.metadata.name ?? "", Date.now());
      if (waiter && seen.size === OBJECTS) waiter.resolve(Math.max(...seen.values()));
    }
  })().catch((err: unknown) => {
    if (!abort.signal.aborted) throw err;
  });
  return {
    reset(): void {
      seen = new Map();
    },
    allGood(): Promise<number> {
      return new Promise((resolve) => {
        waiter = { resolve };
        if (seen.size === OBJECTS) resolve(Math.max(...seen.values()));
      });
    },
    async stop(): Promise<void> {
      abort.abort();
      await done;
    },
  };
}

interface Case {
  store: Store;
  flags: string[];
  namespace: string;
  /** The good config artifact's path on the artifact server. */
  goodConfigPath: string;
  watch: ReturnType<typeof watchGood>;
  lastRollbackAt?: string;
  samples: Sample[];
}

/** The good revision rolled out with a controller that is then stopped; for (b) and (c) the producer then stops serving it. */
async function setUp(cluster: TestCluster, client: KubeClient, server: ArtifactServer, store: Store, flags: string[]): Promise<Case> {
  const namespace = await createTestNamespace(cluster, `bench-rollback-${store}`);
  const good = {
    config: server.add(`${namespace}-config`, configMaps("good"), "good"),
    app: server.add(`${namespace}-app`, deploymentFile("web", { image: "registry.invalid/web:1", schedulable: true }), "good"),
  };
  await publishExternalArtifact(client, namespace, "config", good.config);
  await publishExternalArtifact(client, namespace, "app", good.app);
  const controller = await startTestController(cluster, namespace, flags);
  try {
    await client.create({
      ...STAGESET,
      metadata: { name: "bench", namespace },
      spec: {
        rollbackOnFailure: true,
        retryInterval: "1s",
        stages: [
          { name: "config", sourceRef: { name: "config" } },
          { name: "app", sourceRef: { name: "app" }, timeout: "3s" },
        ],
      },
    });
    await waitForReason(client, namespace, "bench", "Succeeded", TIMEOUT_MS);
  } finally {
    await controller.stop();
  }
  // (b), (c): the producer garbage-collected the good artifacts; only the store has them.
  if (store !== "producer") for (const a of Object.values(good)) assert.ok(server.remove(a.url));
  const list = await client.list("v1", "ConfigMap", { namespace, labelSelector: "app=bench" });
  const watch = watchGood(client, namespace, list.resourceVersion);
  return { store, flags, namespace, goodConfigPath: new URL(good.config.url).pathname, watch, samples: [] };
}

/** One bad revision, failed and rolled back, by a freshly started controller (empty artifact and build caches). */
async function round(cluster: TestCluster, client: KubeClient, server: ArtifactServer, c: Case, index: number): Promise<void> {
  const { namespace, store } = c;
  const lines: string[] = [];
  const controller = await startTestController(cluster, namespace, c.flags, { logLines: lines });
  try {
    c.watch.reset();
    const goodHits = server.hits.get(c.goodConfigPath) ?? 0;
    const revision = `bad-${index}`;
    await publishExternalArtifact(client, namespace, "config", server.add(`${namespace}-config`, configMaps(revision), revision));
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, deploymentFile("web", { image: `registry.invalid/web:${revision}`, schedulable: false }), revision));
    const rolled = await waitFor(
      async () => {
        const s = await getStageSet(client, namespace, "bench");
        const reason = readyCondition(s)?.reason;
        if (reason === "PreviousRevisionUnavailable") throw new Error(`${store}: ${readyCondition(s)?.message}`);
        return reason === "RolledBack" && s?.status?.lastRollback?.at !== c.lastRollbackAt ? s : undefined;
      },
      { description: `${store}: RolledBack after ${revision}`, timeoutMs: TIMEOUT_MS, intervalMs: 200 },
    );
    c.lastRollbackAt = rolled.status?.lastRollback?.at;
    const configRestored = await c.watch.allGood();
    const failed = logTime(lines, "run failed");
    const started = logTime(lines, "rolling back");
    const ended = Date.parse(rolled.status?.lastRollback?.at ?? "");
    assert.ok(Number.isFinite(ended) && Number.isFinite(started) && Number.isFinite(failed), "timestamps parsed");
    assert.match(readyCondition(rolled)?.message ?? "", new RegExp(`rolled back stage "config" ${revision} → good, stage "app" ${revision} → good`));
    const producerHits = (server.hits.get(c.goodConfigPath) ?? 0) - goodHits;
    if (store === "producer") assert.ok(producerHits > 0, "the good artifact was fetched from the producer again");
    c.samples.push({ failureToStart: started - failed, configStage: configRestored - started, restore: ended - started });
  } finally {
    await controller.stop();
  }
}

/** The live state is the good revision again. */
async function checkRestored(client: KubeClient, c: Case): Promise<void> {
  await c.watch.stop();
  const live = await client.list("v1", "ConfigMap", { namespace: c.namespace, labelSelector: "app=bench" });
  assert.equal(live.items.filter((cm: KubeObject) => (cm as { data?: Record<string, string> }).data?.mode === "good").length, OBJECTS, "all ConfigMaps are back at good");
  const dep = await client.get({ apiVersion: "apps/v1", kind: "Deployment", namespace: c.namespace, name: "web" });
  assert.equal((dep?.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers[0]!.image, "registry.invalid/web:1");
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Runs the three cases one at a time (the machine is small), rounds interleaved, and prints one line per store. */
export async function rollbackRestore(cluster: TestCluster, print: (line: string) => void): Promise<void> {
  const client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  const server = new ArtifactServer();
  await server.start();
  const storeDir = mkdtempSync(join(tmpdir(), "bench-rollback-store-"));
  const s3 = new S3Server();
  const cases: Case[] = [];
  try {
    await s3.start();
    const s3Flags = [
      ...["--rollback-store-s3-endpoint", s3.endpoint, "--rollback-store-s3-bucket", s3.buckets[0]!, "--rollback-store-s3-prefix", "rollbacks"],
      ...["--rollback-store-s3-use-ssl=false", "--rollback-store-s3-region", "us-east-1"],
      ...["--rollback-store-s3-access-key", s3.accessKey, "--rollback-store-s3-secret-key", s3.secretKey],
    ];
    cases.push(await setUp(cluster, client, server, "producer", []));
    cases.push(await setUp(cluster, client, server, "filesystem", ["--rollback-store-path", storeDir]));
    cases.push(await setUp(cluster, client, server, "s3", s3Flags));
    // Interleaved, so drift in the machine's load does not favour one store.
    for (let r = 0; r < ROUNDS; r++) for (const c of cases) await round(cluster, client, server, c, r);
    for (const c of cases) await checkRestored(client, c);
  } finally {
    await Promise.all(cases.map((c) => c.watch.stop()));
    await s3.stop();
    rmSync(storeDir, { recursive: true, force: true });
    await server.stop();
    client.close();
  }
  const results = new Map(cases.map((c) => [c.store, c.samples]));
  const baseline = median(results.get("producer")!.map((s) => s.restore));
  const baselineConfig = median(results.get("producer")!.map((s) => s.configStage));
  const ms = (v: number) => `${v.toFixed(0)}ms`;
  for (const [store, samples] of results) {
    const restore = median(samples.map((s) => s.restore));
    const config = median(samples.map((s) => s.configStage));
    print(
      `rollback-restore (${OBJECTS} objects, ${store === "producer" ? "producer" : `${store} store`}, median of ${samples.length}): ` +
        `restore ${ms(restore)} (${(restore / baseline).toFixed(2)}x the producer), ` +
        `${OBJECTS}-object stage ${ms(config)} (${(config / baselineConfig).toFixed(2)}x), ` +
        `failure→rollback start ${ms(median(samples.map((s) => s.failureToStart)))}; ` +
        `runs ${samples.map((s) => ms(s.restore)).join(" ")}`,
    );
  }
}

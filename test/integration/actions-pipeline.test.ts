// Actions around stages, with the controller in-process against the real
// control plane: pre → apply → post → next stage in order, a failing pre
// applies nothing and runs onFailure, the ledger keeps a completed action
// from running twice, and `stagesetctl reconcile --stage` re-runs a stage's
// actions once.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { runCli } from "../support/cli.js";
import { createTestNamespace } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { configMapFile, getStageSet, readyCondition, STAGESET, usePipelineFixture, waitForEvent, waitForReason } from "../support/pipeline.js";
import { ChangeRecorder } from "../support/recorder.js";
import { waitFor } from "../support/wait.js";

/** A loopback HTTP server that logs every request (path, and the etcd revision seen at that moment, filled by the test). */
class HookServer {
  readonly requests: { path: string; method: string; at: number }[] = [];
  #server: Server | undefined;
  #status = 200;
  port = 0;

  async start(): Promise<void> {
    this.#server = createServer((req: IncomingMessage, res) => {
      this.requests.push({ path: req.url ?? "", method: req.method ?? "", at: this.requests.length });
      req.resume();
      res.writeHead(this.#status).end("ok");
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server!.address() as AddressInfo).port;
  }

  failWith(status: number): void {
    this.#status = status;
  }

  count(path: string): number {
    return this.requests.filter((r) => r.path === path).length;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }
}

/** A Job manifest; with `fail`, kwok fails its pod (the pod-fail stage) with a termination message. */
function job(name: string, fail = false): string {
  const meta = fail ? `{labels: {stageset.test/fail: "true"}, annotations: {stageset.test/termination-message: "schema 7 is locked"}}` : "{}";
  return `apiVersion: batch/v1
kind: Job
metadata: {name: ${name}}
spec:
  backoffLimit: 0
  template:
    metadata: ${meta}
    spec:
      restartPolicy: Never
      containers: [{name: main, image: registry.invalid/${name}:1}]
`;
}

describe("actions around stages", { concurrency: true }, () => {
  const fixture = usePipelineFixture();
  const hooks = new HookServer();
  before(() => hooks.start());
  after(() => hooks.stop());
  const flags = () => ["--allowed-action-hosts", `127.0.0.1:${hooks.port}`];
  const url = (path: string) => `http://127.0.0.1:${hooks.port}${path}`;

  test("pre job → apply → post http → next stage, in that order; a steady-state run runs nothing again", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "actions-order");
    const { client, server } = fixture;
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("app", { v: "1" }), "r1"));
    await publishExternalArtifact(client, namespace, "next", server.add(`${namespace}-next`, configMapFile("next", { v: "1" }), "r1"));
    await publishExternalArtifact(client, namespace, "migrations", server.add(`${namespace}-migrations`, { "job.yaml": job("migrate") }, "m1"));
    const recorder = await ChangeRecorder.start(client, [
      { apiVersion: "v1", kind: "ConfigMap", namespace },
      { apiVersion: "batch/v1", kind: "Job", namespace },
    ]);
    const seenAtPost: { app: boolean; next: boolean }[] = [];
    const path = `/${namespace}/post`;
    const controller = await startTestController(fixture.cluster, namespace, flags());
    try {
      await client.create({
        ...STAGESET,
        metadata: { name: "web", namespace },
        spec: {
          interval: "1h",
          stages: [
            {
              name: "app",
              sourceRef: { name: "app" },
              actions: {
                pre: [{ name: "migrate", job: { sourceRef: { name: "migrations" } } }],
                post: [{ name: "notify", http: { url: url(path), headers: { "X-Stage": "app" } } }],
              },
            },
            { name: "next", sourceRef: { name: "next" } },
          ],
        },
      });
      await waitFor(
        async () => {
          if (hooks.count(path) === 0) return undefined;
          if (seenAtPost.length === 0) {
            seenAtPost.push({
              app: recorder.first((e) => e.name === "app") !== undefined,
              next: recorder.first((e) => e.name === "next") !== undefined,
            });
          }
          return true;
        },
        { description: "the post action's request", timeoutMs: 60_000, intervalMs: 20 },
      );
      const ready = await waitForReason(client, namespace, "web", "Succeeded", 60_000);
      const app = recorder.first((e) => e.name === "app" && e.type === "ADDED");
      const next = recorder.first((e) => e.name === "next" && e.type === "ADDED");
      const jobDone = recorder.first((e) => e.kind === "Job" && ((e.object.status as { succeeded?: number } | undefined)?.succeeded ?? 0) > 0);
      assert.ok(jobDone && app && jobDone.revision < app.revision, "the stage was applied after its pre Job completed");
      assert.ok(app && next && next.revision > app.revision, "the next stage started after the first");
      assert.deepEqual(seenAtPost[0], { app: true, next: false }, "post ran after the stage's apply and before the next stage's");
      assert.deepEqual(ready.status?.stages?.[0]?.executedActions, ["pre/migrate", "post/notify"]);
      assert.equal(ready.status?.stages?.[0]?.ledgerRevision, "r1");
      await waitForEvent(client, namespace, "ActionStarted", /post action "notify"/);
      const counted = (await controller.metrics.actionTotal.get()).values.filter((v) => v.labels.namespace === namespace);
      assert.deepEqual(
        counted.map((v) => [v.labels.stage, v.labels.list, v.labels.result, v.value]).sort(),
        [
          ["app", "post", "success", 1],
          ["app", "pre", "success", 1],
        ],
        "stageset_action_total counts each attempt by list and result",
      );
      const phaseCounts = new Map(
        (await controller.metrics.stagePhaseDuration.get()).values.filter((v) => v.metricName === "stageset_stage_phase_duration_seconds_count").map((v) => [v.labels.phase, v.value]),
      );
      for (const phase of ["build", "pre", "apply", "verify", "post", "prune"]) {
        assert.ok((phaseCounts.get(phase) ?? 0) >= 1, `stageset_stage_phase_duration_seconds observed the ${phase} phase`);
      }

      // A forced reconcile of the same revision runs no action again.
      await client.patch({ ...STAGESET, namespace, name: "web" }, { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "again" } } }, "merge");
      await waitFor(async () => ((await getStageSet(client, namespace, "web"))?.status?.lastHandledReconcileAt === "again" ? true : undefined), {
        description: "the reconcile request handled",
        timeoutMs: 30_000,
      });
      assert.equal(hooks.count(path), 1, "the ledger kept the post action from running twice");

      // `stagesetctl reconcile --stage app` re-runs that stage's actions once.
      const cli = await runCli(["reconcile", "web", "-n", namespace, "--stage", "app", "--wait", "--timeout", "60s"], { kubeconfig: fixture.cluster.kubeconfigPath });
      assert.equal(cli.code, 0, cli.stderr);
      await waitFor(async () => (hooks.count(path) === 2 ? true : undefined), { description: "post ran once more", timeoutMs: 30_000 });
      const after = await waitForReason(client, namespace, "web", "Succeeded", 30_000);
      assert.match(after.status?.lastHandledReconcileStage ?? "", /^app@/);
      await client.patch({ ...STAGESET, namespace, name: "web" }, { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "third" } } }, "merge");
      await waitFor(async () => ((await getStageSet(client, namespace, "web"))?.status?.lastHandledReconcileAt === "third" ? true : undefined), {
        description: "a later reconcile handled",
        timeoutMs: 30_000,
      });
      assert.equal(hooks.count(path), 2, "the reconcile-stage request was handled once");
    } finally {
      await controller.stop();
      await recorder.stop();
    }
  });

  test("a failing pre action applies nothing, runs onFailure, retries as asked, and names stage, list and action", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "actions-fail");
    const { client, server } = fixture;
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("app", { v: "1" }), "r1"));
    await publishExternalArtifact(client, namespace, "migrations", server.add(`${namespace}-migrations`, { "job.yaml": job("migrate", true) }, "m1"));
    const cleanup = `/${namespace}/cleanup`;
    const jobs = await ChangeRecorder.start(client, [{ apiVersion: "batch/v1", kind: "Job", namespace }]);
    const controller = await startTestController(fixture.cluster, namespace, flags());
    try {
      await client.create({
        ...STAGESET,
        metadata: { name: "web", namespace },
        spec: {
          retryInterval: "1h",
          stages: [
            {
              name: "app",
              sourceRef: { name: "app" },
              actions: {
                pre: [{ name: "migrate", retries: 2, job: { sourceRef: { name: "migrations" } } }],
                onFailure: [{ name: "cleanup", http: { url: url(cleanup) } }],
              },
            },
          ],
        },
      });
      const failed = await waitForReason(client, namespace, "web", "StageFailed", 60_000);
      assert.match(readyCondition(failed)?.message ?? "", /^stage "app": pre action "migrate" failed \(after 3 attempts\): .*schema 7 is locked/);
      const created = new Set(jobs.events.filter((e) => e.type === "ADDED").map((e) => e.object.metadata.uid));
      assert.equal(created.size, 3, "retries: 2 runs the Job three times");
      assert.equal(hooks.count(cleanup), 1, "onFailure ran");
      assert.equal(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "app" }), undefined, "nothing of the stage was applied");
      await waitForEvent(client, namespace, "ActionFailed", /pre action "migrate" failed/);
    } finally {
      await controller.stop();
      await jobs.stop();
    }
  });
});

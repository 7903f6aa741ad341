// Chaos: the controller binary SIGKILLed at random moments during
// multi-action rollouts, restarted each time. Every rollout converges, and
// every action of a revision completes exactly once: an interrupted one at
// most twice, and never after its ledger entry was written.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import type { StageSet } from "../../src/api/types.js";
import { createTestNamespace } from "../support/cluster.js";
import { ControllerProcess } from "../support/controller-process.js";
import { publishExternalArtifact } from "../support/flux.js";
import { configMapFile, getStageSet, readyCondition, STAGESET, usePipelineFixture } from "../support/pipeline.js";
import { ChangeRecorder } from "../support/recorder.js";
import { waitFor } from "../support/wait.js";

const KILLS = Number(process.env.STAGESET_CHAOS_KILLS ?? 20);

/** Requests by path, each with the moment (performance.now) it arrived. */
class CountingServer {
  readonly requests: { path: string; at: number }[] = [];
  #server: Server | undefined;
  port = 0;
  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      this.requests.push({ path: req.url ?? "", at: performance.now() });
      req.resume();
      res.writeHead(200).end("ok");
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server!.address() as AddressInfo).port;
  }
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }
}

const JOB = `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: registry.invalid/migrate:1}]
`;

const fixture = usePipelineFixture();

test(`the controller binary SIGKILLed ${KILLS} times during multi-action rollouts: every action of a revision completes once`, async (t) => {
  const namespace = await createTestNamespace(fixture.cluster, "chaos");
  const { client, server } = fixture;
  const hooks = new CountingServer();
  await hooks.start();
  const url = (path: string) => `http://127.0.0.1:${hooks.port}/${path}`;
  const publish = async (revision: string) => {
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("app", { revision }), revision));
    await publishExternalArtifact(client, namespace, "next", server.add(`${namespace}-next`, configMapFile("next", { revision }), revision));
  };
  await publishExternalArtifact(client, namespace, "migrations", server.add(`${namespace}-migrations`, { "job.yaml": JOB }, "m1"));
  await publish("r1");
  await client.create({
    ...STAGESET,
    metadata: { name: "web", namespace },
    spec: {
      interval: "1h",
      retryInterval: "1s",
      stages: [
        {
          name: "app",
          sourceRef: { name: "app" },
          actions: {
            pre: [
              { name: "announce", http: { url: url("pre") } },
              { name: "migrate", job: { sourceRef: { name: "migrations" } } },
            ],
            post: [{ name: "notify", http: { url: url("post") } }],
          },
        },
        { name: "next", sourceRef: { name: "next" }, actions: { pre: [{ name: "gate", http: { url: url("next-pre") } }] } },
      ],
    },
  });

  // Status and Jobs as they change, with the moment each change was seen.
  const recorder = await ChangeRecorder.start(client, [
    { ...STAGESET, namespace },
    { apiVersion: "batch/v1", kind: "Job", namespace },
  ]);
  const progress = () => hooks.requests.length + recorder.events.length;
  const controller = new ControllerProcess(fixture.cluster.kubeconfigPath, namespace, ["--allowed-action-hosts", `127.0.0.1:${hooks.port}`]);
  const start = () => controller.start();
  const kill = () => controller.kill();
  const succeededAt = async (revision: string) => {
    const s = await getStageSet(client, namespace, "web");
    return readyCondition(s)?.reason === "Succeeded" && s?.status?.lastAppliedRevisions?.[`${namespace}/app`] === revision ? s : undefined;
  };

  const windows: { revision: string; from: number; to: number }[] = [];
  let revision = 1;
  let windowStart = performance.now();
  let lastKill = 0;
  const killedAt: number[] = [];
  try {
    for (let life = 0; life < KILLS; life++) {
      start();
      // A random moment: after 1 to 6 observable steps (requests, status writes, Jobs) of this process, or once converged.
      const steps = 1 + Math.floor(Math.random() * 6);
      const before = progress();
      await waitFor(async () => (progress() - before >= steps || (await succeededAt(`r${revision}`)) ? true : undefined), {
        description: `step ${steps} of life ${life + 1}`,
        timeoutMs: 60_000,
        intervalMs: 10,
        abortIf: () => controller.exited(),
      });
      await kill();
      lastKill = performance.now();
      killedAt.push(lastKill);
      if (await succeededAt(`r${revision}`)) {
        windows.push({ revision: `r${revision}`, from: windowStart, to: performance.now() });
        revision++;
        windowStart = performance.now();
        await publish(`r${revision}`);
      }
    }
    // The last life runs to the end.
    start();
    const converged = await waitFor(() => succeededAt(`r${revision}`), { description: `r${revision} converged`, timeoutMs: 120_000, intervalMs: 50 });
    const convergenceMs = performance.now() - lastKill;
    windows.push({ revision: `r${revision}`, from: windowStart, to: performance.now() });
    assert.deepEqual(converged.status?.stages?.map((s) => s.executedActions), [["pre/announce", "pre/migrate", "post/notify"], ["pre/gate"]]);

    const jobs = new Set(recorder.events.filter((e) => e.kind === "Job" && e.type === "ADDED").map((e) => e.object.metadata.uid));
    assert.equal(jobs.size, windows.length, "one Job per revision, never created twice");

    // Exactly once per revision: a call repeats only when a kill interrupted it (between its first request and
    // its ledger entry), and no request arrives after a status write recorded the action for that revision.
    let duplicates = 0;
    for (const w of windows) {
      for (const [path, key, stage] of [["/pre", "pre/announce", 0], ["/post", "post/notify", 0], ["/next-pre", "pre/gate", 1]] as const) {
        const recorded = recorder.events.find((e) => {
          const entry = e.kind === "StageSet" ? (e.object as StageSet).status?.stages?.[stage] : undefined;
          return entry?.ledgerRevision === w.revision && (entry.executedActions ?? []).includes(key);
        });
        assert.ok(recorded, `${key} recorded for ${w.revision}`);
        const calls = hooks.requests.filter((r) => r.path === path && r.at >= w.from && r.at <= w.to);
        const late = calls.filter((r) => r.at > recorded.seen);
        assert.deepEqual(late, [], `${path} ran after its ledger entry for ${w.revision}`);
        assert.ok(calls.length >= 1, `${path} ran for ${w.revision}`);
        const interruptions = killedAt.filter((k) => k > calls[0]!.at && k < recorded.seen).length;
        assert.ok(calls.length <= 1 + interruptions, `${path} ran ${calls.length} times for ${w.revision} with ${interruptions} kill(s) in flight`);
        duplicates += calls.length - 1;
      }
    }
    t.diagnostic(
      `chaos: ${KILLS} SIGKILLs over ${windows.length} revisions; convergence after the last kill ${(convergenceMs / 1000).toFixed(1)}s; ` +
        `duplicate http calls (interrupted mid-flight) ${duplicates}; Jobs ${jobs.size}`,
    );
  } finally {
    await kill();
    await recorder.stop();
    await hooks.stop();
  }
});

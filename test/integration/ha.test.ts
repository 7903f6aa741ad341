// High availability with three controller processes (the real binary) and
// leader election: only the Lease holder reconciles; every replica serves
// admission (self-signed mode, one shared Secret, one caBundle), the gate,
// metrics and /readyz. The leader is SIGKILLed while the API server keeps
// calling the webhook through a loopback TCP balancer (what a Service does
// in a cluster): another replica takes over within the lease duration plus
// one retry period, and no admission request sent after the kill fails (one
// the API server had in flight to the killed process itself may break with
// it, as it would behind a Service).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { repoRoot } from "../../src/util/tools.js";
import { ADMISSION_PATH } from "../../src/webhook/index.js";
import { createTestNamespace } from "../support/cluster.js";
import { freePorts } from "../support/controlplane/ports.js";
import { publishExternalArtifact } from "../support/flux.js";
import { configMapFile, getStageSet, readyCondition, STAGESET, usePipelineFixture, waitForReason } from "../support/pipeline.js";
import { waitFor } from "../support/wait.js";

const LEASE_MS = 4_000;
const RENEW_MS = 3_000;
const RETRY_MS = 1_000;

function controllerCommand(): string[] {
  const compiled = `${repoRoot()}/dist/src/main.js`;
  return existsSync(compiled) ? [compiled] : ["--import", "tsx", `${repoRoot()}/src/main.ts`];
}

/** Forwards each TCP connection to the first live backend, trying the next when one refuses: a Service's load balancing, on loopback. */
class TcpBalancer {
  #server: Server | undefined;
  #next = 0;
  readonly #sockets = new Set<Socket>();
  port = 0;
  constructor(readonly backends: number[]) {}
  async start(): Promise<void> {
    this.#server = createServer((client) => {
      this.#sockets.add(client);
      client.on("close", () => this.#sockets.delete(client));
      client.pause();
      const tryBackend = (attempt: number) => {
        if (attempt >= this.backends.length) return void client.destroy();
        const port = this.backends[(this.#next + attempt) % this.backends.length]!;
        const upstream = connect(port, "127.0.0.1");
        upstream.once("connect", () => {
          this.#next = (this.#next + 1) % this.backends.length;
          this.#sockets.add(upstream);
          upstream.on("close", () => this.#sockets.delete(upstream));
          client.pipe(upstream).pipe(client);
          client.resume();
          upstream.on("error", () => client.destroy());
          client.on("error", () => upstream.destroy());
        });
        upstream.once("error", () => tryBackend(attempt + 1));
      };
      tryBackend(0);
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server!.address() as { port: number }).port;
  }
  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }
}

interface Replica {
  child: ChildProcess;
  ports: { probe: number; metrics: number; gate: number; webhook: number };
  stderr: string;
}

const fixture = usePipelineFixture();

test("three replicas: one leader reconciles, all admit; the leader SIGKILLed is replaced within lease + retry and admission never fails", async (t) => {
  const { client, server, cluster } = fixture;
  const namespace = await createTestNamespace(cluster, "ha");
  const configName = `stageset-ha-${namespace}`;
  const all = await freePorts(12);
  const replicaPorts = [0, 1, 2].map((i) => ({ probe: all[i * 4]!, metrics: all[i * 4 + 1]!, gate: all[i * 4 + 2]!, webhook: all[i * 4 + 3]! }));
  const balancer = new TcpBalancer(replicaPorts.map((p) => p.webhook));
  await balancer.start();
  await client.create({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: configName, labels: { "stageset-test": "true" } },
    webhooks: [
      {
        name: "stagesets.stages.metio.wtf",
        clientConfig: { url: `https://127.0.0.1:${balancer.port}${ADMISSION_PATH}` },
        rules: [{ apiGroups: ["stages.metio.wtf"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["stagesets"], scope: "Namespaced" }],
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
        failurePolicy: "Fail",
        sideEffects: "None",
        admissionReviewVersions: ["v1"],
        timeoutSeconds: 5,
      },
    ],
  });

  const start = (ports: Replica["ports"]): Replica => {
    const replica: Replica = {
      ports,
      stderr: "",
      child: spawn(
        process.execPath,
        [
          ...controllerCommand(),
          "--kubeconfig",
          cluster.kubeconfigPath,
          "--watch-namespaces",
          namespace,
          "--leader-elect",
          "--leader-election-namespace",
          namespace,
          "--leader-election-lease-duration",
          `${LEASE_MS}ms`,
          "--leader-election-renew-deadline",
          `${RENEW_MS}ms`,
          "--leader-election-retry-period",
          `${RETRY_MS}ms`,
          "--health-probe-bind-address",
          `127.0.0.1:${ports.probe}`,
          "--metrics-bind-address",
          `127.0.0.1:${ports.metrics}`,
          "--gate-bind-address",
          `127.0.0.1:${ports.gate}`,
          "--webhook-port",
          String(ports.webhook),
          "--webhook-cert-mode",
          "self-signed",
          "--webhook-service-name",
          "stageset-ha",
          "--webhook-service-namespace",
          namespace,
          "--webhook-validating-config-name",
          configName,
          "--webhook-cert-extra-sans",
          "127.0.0.1",
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      ),
    };
    replica.child.stderr?.on("data", (chunk: Buffer) => (replica.stderr = (replica.stderr + chunk.toString()).slice(-4000)));
    return replica;
  };
  const metric = async (replica: Replica, pattern: RegExp): Promise<number | undefined> => {
    const text = await (await fetch(`http://127.0.0.1:${replica.ports.metrics}/metrics`)).text();
    const match = pattern.exec(text);
    return match ? Number(match[1]) : undefined;
  };
  const isLeader = async (replica: Replica) => (await metric(replica, /leader_election_master_status\{name="stageset-controller\.stages\.metio\.wtf"\} (\d+)/)) === 1;
  const reconciles = async (replica: Replica) => {
    const text = await (await fetch(`http://127.0.0.1:${replica.ports.metrics}/metrics`)).text();
    return [...text.matchAll(/controller_runtime_reconcile_total\{controller="stageset",result="[a-z_]+"\} (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  };
  const status = async (port: number, path: string) => {
    try {
      return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
    } catch {
      return 0;
    }
  };

  const replicas = replicaPorts.map(start);
  let admitting = true;
  const admissionFailures: { startedAt: number; error: string }[] = [];
  let admitted = 0;
  let loop: Promise<void> | undefined;
  try {
    const exited = () => replicas.find((r) => r.child.exitCode !== null && r.child.signalCode === null);
    await waitFor(async () => ((await Promise.all(replicas.map((r) => status(r.ports.probe, "/readyz")))).every((s) => s === 200) ? true : undefined), {
      description: "every replica ready (caches synced, webhook serving)",
      timeoutMs: 60_000,
      abortIf: () => (exited() ? `a replica exited: ${exited()!.stderr}` : undefined),
    });
    const config = await client.get<KubeObject & { webhooks: { clientConfig: { caBundle?: string } }[] }>({ apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingWebhookConfiguration", name: configName });
    assert.ok(config?.webhooks[0]?.clientConfig.caBundle, "the replicas patched the caBundle");
    const secrets = (await client.list("v1", "Secret", { namespace })).items.filter((s) => s.metadata.name?.startsWith("stageset-ha"));
    assert.equal(secrets.length, 1, "one Secret holds the CA and the serving pair for all replicas");

    // One leader; every replica serves the gate and admission.
    const leaderIndex = await waitFor(
      async () => {
        const leaders = await Promise.all(replicas.map(isLeader));
        return leaders.filter(Boolean).length === 1 ? leaders.indexOf(true) : undefined;
      },
      { description: "exactly one leader", timeoutMs: 30_000 },
    );
    for (const r of replicas) assert.equal(await status(r.ports.gate, `/gate/${namespace}/none/app`), 403, "every replica answers the gate");

    // Admission, continuously, through the balancer: dry-run creates of a valid StageSet.
    let seq = 0;
    const valid = () => ({ ...STAGESET, metadata: { name: `probe-${++seq}`, namespace }, spec: { stages: [{ name: "app", sourceRef: { name: "app" } }] } });
    await waitFor(async () => (await client.create(valid(), { dryRun: true }), true), { description: "admission through the webhook", timeoutMs: 30_000 });
    loop = (async () => {
      while (admitting) {
        const startedAt = performance.now();
        try {
          await client.create(valid(), { dryRun: true });
          admitted++;
        } catch (err) {
          admissionFailures.push({ startedAt, error: String(err) });
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const refusedSelf = await client.create({ ...valid(), spec: { dependsOn: [{ name: "self" }], stages: [{ name: "app", sourceRef: { name: "app" } }] }, metadata: { name: "self", namespace } }).then(
      () => undefined,
      (err: unknown) => String(err),
    );
    assert.match(refusedSelf ?? "accepted", /spec\.dependsOn\[0\]: a StageSet cannot depend on itself/);

    // Only the leader reconciles.
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("settings", { revision: "r1" }), "r1"));
    await client.create({ ...STAGESET, metadata: { name: "web", namespace }, spec: { stages: [{ name: "app", sourceRef: { name: "app" } }] } });
    await waitForReason(client, namespace, "web", "Succeeded");
    const leader = replicas[leaderIndex]!;
    const followers = replicas.filter((_, i) => i !== leaderIndex);
    assert.ok((await reconciles(leader)) > 0, "the leader reconciled");
    for (const follower of followers) assert.equal(await reconciles(follower), 0, "a follower never reconciles");

    // SIGKILL the leader: a follower takes over within the lease duration plus one retry period.
    const killedAt = performance.now();
    leader.child.kill("SIGKILL");
    await new Promise((resolve) => leader.child.once("exit", resolve));
    const deadAt = performance.now();
    const newLeader = await waitFor(
      async () => {
        for (const follower of followers) if (await isLeader(follower)) return follower;
        return undefined;
      },
      { description: "a follower leading", timeoutMs: 30_000, intervalMs: 50 },
    );
    const takeoverMs = performance.now() - killedAt;
    t.diagnostic(`takeover after SIGKILL: ${(takeoverMs / 1000).toFixed(2)}s (lease ${LEASE_MS / 1000}s + retry ${RETRY_MS / 1000}s); admission requests during the test: ${admitted}`);
    // The bound, plus the 50ms metrics poll and a scheduling margin on a busy 2-core machine.
    assert.ok(takeoverMs <= LEASE_MS + RETRY_MS + 750, `takeover took ${takeoverMs.toFixed(0)}ms`);

    // The new leader reconciles a new revision.
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("settings", { revision: "r2" }), "r2"));
    await waitFor(
      async () => {
        const s = await getStageSet(client, namespace, "web");
        return readyCondition(s)?.reason === "Succeeded" && s?.status?.lastAppliedRevisions?.[`${namespace}/app`] === "r2" ? true : undefined;
      },
      { description: "r2 rolled out by the new leader", timeoutMs: 30_000 },
    );
    assert.ok((await reconciles(newLeader)) > 0);
    admitting = false;
    await loop;
    // A request the API server had in flight to the killed process itself can break with it (EOF); every
    // request sent after the process was gone is admitted by the surviving replicas.
    const inFlightAtKill = admissionFailures.filter((f) => f.startedAt < deadAt && f.startedAt > killedAt - 6_000);
    assert.deepEqual(
      admissionFailures.filter((f) => !inFlightAtKill.includes(f)).map((f) => f.error),
      [],
      "no admission request sent after the leader died failed",
    );
    assert.ok(inFlightAtKill.length <= 1, `at most the one request in flight on the killed process failed: ${JSON.stringify(inFlightAtKill)}`);
    t.diagnostic(`admission requests in flight to the killed replica that broke with it: ${inFlightAtKill.length}`);
    assert.ok(admitted > 10, `admission kept being exercised (${admitted} requests)`);
  } finally {
    admitting = false;
    await loop;
    for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
    await balancer.stop();
    await client.delete({ apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingWebhookConfiguration", name: configName }).catch(() => undefined);
  }
});

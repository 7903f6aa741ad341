// Versioned migrations against the real API server. The controller binary is
// SIGKILLed while the second of two migrations runs and restarted: the first
// never runs again, both ran before the stage's pre actions, and
// status.version moves only at the end. Then the three ways to declare the
// version, and the refusals: an invalid version and a downgrade across a
// migration's `to`.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import type { StageSet } from "../../src/api/types.js";
import { runCli } from "../support/cli.js";
import { createTestNamespace } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { ControllerProcess } from "../support/controller-process.js";
import { publishExternalArtifact } from "../support/flux.js";
import { configMapFile, getStageSet, readyCondition, STAGESET, usePipelineFixture, waitForEvent, waitForReason } from "../support/pipeline.js";
import { waitFor } from "../support/wait.js";

/** Answers every request 200 in arrival order, except paths told to hang (the response is held until released). */
class HookServer {
  readonly paths: string[] = [];
  readonly #hanging = new Set<string>();
  readonly #held: ServerResponse[] = [];
  #server: Server | undefined;
  port = 0;
  hang(path: string): void {
    this.#hanging.add(path);
  }
  release(): void {
    this.#hanging.clear();
    for (const res of this.#held.splice(0)) res.destroy();
  }
  count(path: string): number {
    return this.paths.filter((p) => p === path).length;
  }
  async start(): Promise<void> {
    this.#server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? "";
      this.paths.push(path);
      req.resume();
      if (this.#hanging.has(path)) this.#held.push(res);
      else res.writeHead(200).end("ok");
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server!.address() as AddressInfo).port;
  }
  async stop(): Promise<void> {
    this.release();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }
}

const versionLabel = (version: string) => `  labels:\n    app.kubernetes.io/version: "${version}"\n`;

describe("versioned migrations", { concurrency: true }, () => {
  const fixture = usePipelineFixture();

  test("1.0.0 → 2.0.0 crossing migrations to 1.5.0 and 2.0.0: a SIGKILL during the second does not run the first again", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "migrate");
    const { client, server } = fixture;
    const hooks = new HookServer();
    await hooks.start();
    const url = (path: string) => `http://127.0.0.1:${hooks.port}${path}`;
    const publish = (revision: string, version: string) =>
      publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("settings", { revision }, versionLabel(version)), revision));
    const controller = new ControllerProcess(fixture.cluster.kubeconfigPath, namespace, ["--allowed-action-hosts", `127.0.0.1:${hooks.port}`]);
    const start = () => controller.start();
    const kill = () => controller.kill();
    const exitedEarly = () => controller.exited();
    try {
      await publish("r1", "1.0.0");
      await client.create({
        ...STAGESET,
        metadata: { name: "web", namespace },
        spec: {
          interval: "1h",
          retryInterval: "1s",
          version: { fromObject: { stage: "app", kind: "ConfigMap", name: "settings" } },
          // Declared out of order: they run in ascending `to` order.
          migrations: [
            { name: "to-2-0", to: "2.0.0", from: "1.*", stage: "app", actions: [{ name: "convert", http: { url: url("/m20") } }] },
            { name: "to-1-5", to: "1.5.0", stage: "app", actions: [{ name: "backfill", http: { url: url("/m15") } }] },
          ],
          stages: [{ name: "app", sourceRef: { name: "app" }, actions: { pre: [{ name: "announce", http: { url: url("/pre") } }] } }],
        },
      });
      start();
      const first = await waitForReason(client, namespace, "web", "Succeeded", 60_000);
      assert.equal(first.status?.version, "1.0.0", "the version read from the ConfigMap's app.kubernetes.io/version label");
      assert.deepEqual(hooks.paths, ["/pre"], "a first deployment runs no migrations");

      // 2.0.0: the second migration hangs; the controller is killed while it runs.
      hooks.hang("/m20");
      await publish("r2", "2.0.0");
      await waitFor(async () => (hooks.count("/m20") === 1 ? true : undefined), { description: "the second migration started", timeoutMs: 60_000, abortIf: exitedEarly });
      const midway = await waitFor(
        async () => {
          const s = await getStageSet(client, namespace, "web");
          return s?.status?.executedMigrations?.includes("to-1-5") ? s : undefined;
        },
        { description: "the first migration recorded", timeoutMs: 10_000 },
      );
      assert.deepEqual(midway.status?.pendingMigrations, ["to-2-0"]);
      assert.equal(midway.status?.version, "1.0.0", "status.version moves only after a fully successful run");
      await kill();
      hooks.release();

      start();
      const done = await waitFor(
        async () => {
          const s = await getStageSet(client, namespace, "web");
          return readyCondition(s)?.reason === "Succeeded" && s?.status?.version === "2.0.0" ? s : undefined;
        },
        { description: "2.0.0 deployed after the restart", timeoutMs: 60_000, abortIf: exitedEarly },
      );
      assert.deepEqual(hooks.paths, ["/pre", "/m15", "/m20", "/m20", "/pre"], "each migration before the stage's pre actions, in ascending to order; only the interrupted one again");
      assert.deepEqual(done.status?.executedMigrations, ["to-1-5", "to-2-0"]);
      assert.equal(done.status?.pendingMigrations, undefined);
      await waitForEvent(client, namespace, "MigrationStarted", /migration "to-1-5" \(to 1\.5\.0\) started before stage "app"/);
      await waitForEvent(client, namespace, "MigrationCompleted", /migration "to-2-0"/);
      const get = await runCli(["get", "web", "-n", namespace], { kubeconfig: fixture.cluster.kubeconfigPath });
      assert.match(get.stdout, /Version:\s+2\.0\.0/);
      assert.match(get.stdout, /Migrations:\s+executed to-1-5, to-2-0/);
    } finally {
      await kill();
      await hooks.stop();
    }
  });

  test("the version from a file in the artifact; a failing migration is MigrationFailed naming it and its action", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "migrate-file");
    const { client, server } = fixture;
    const hooks = new HookServer();
    await hooks.start();
    const publish = (revision: string, version: string) =>
      publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, { ...configMapFile("settings", { revision }), VERSION: `v${version}\n` }, revision));
    const controller = await startTestController(fixture.cluster, namespace, ["--allowed-action-hosts", `127.0.0.1:${hooks.port}`]);
    try {
      await publish("r1", "1.2.0");
      await client.create({
        ...STAGESET,
        metadata: { name: "web", namespace },
        spec: {
          retryInterval: "1h",
          version: { fromArtifact: { stage: "app", path: "VERSION" } },
          migrations: [{ name: "to-2-0", to: "2.0.0", stage: "app", actions: [{ name: "convert", http: { url: `http://127.0.0.1:${hooks.port}/m20`, expectedStatus: [204] } }] }],
          stages: [{ name: "app", sourceRef: { name: "app" } }],
        },
      });
      const first = await waitForReason(client, namespace, "web", "Succeeded");
      assert.equal(first.status?.version, "1.2.0", "a leading v and the newline are accepted");

      await publish("r2", "2.0.0");
      const failed = await waitForReason(client, namespace, "web", "MigrationFailed");
      assert.match(readyCondition(failed)?.message ?? "", /migration "to-2-0" \(to 2\.0\.0, before stage "app"\) failed: action "convert" failed/);
      assert.equal(failed.status?.version, "1.2.0");
      assert.deepEqual(failed.status?.pendingMigrations, ["to-2-0"]);
      assert.equal(failed.status?.lastAppliedRevisions?.[`${namespace}/app`], "r1", "the stage after the failed migration was not applied");
      await waitForEvent(client, namespace, "MigrationFailed", /to-2-0/);
    } finally {
      await controller.stop();
      await hooks.stop();
    }
  });

  test("an invalid version is InvalidVersion with nothing applied; a downgrade across a migration is DowngradeRequiresMigration", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "migrate-refuse");
    const { client, server } = fixture;
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMapFile("settings", { a: "1" }), "r1"));
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      const spec = (value: string): StageSet["spec"] => ({
        version: { value },
        migrations: [{ name: "to-2-0", to: "2.0.0", stage: "app", actions: [{ name: "pause", wait: { duration: "1s" } }] }],
        stages: [{ name: "app", sourceRef: { name: "app" } }],
      });
      await client.create({ ...STAGESET, metadata: { name: "bad", namespace }, spec: spec("2.x") });
      const invalid = await waitForReason(client, namespace, "bad", "InvalidVersion");
      assert.match(readyCondition(invalid)?.message ?? "", /spec\.version\.value: "2\.x" is not/);
      assert.equal(invalid.status?.conditions?.find((c) => c.type === "Stalled")?.status, "True", "terminal until the spec or the source changes");
      assert.equal(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "settings" }), undefined, "nothing applied");

      await client.create({ ...STAGESET, metadata: { name: "web", namespace }, spec: spec("2.0.0") });
      const deployed = await waitForReason(client, namespace, "web", "Succeeded");
      assert.equal(deployed.status?.version, "2.0.0");
      assert.equal(deployed.status?.executedMigrations, undefined, "a first deployment runs no migrations");
      await client.patch({ ...STAGESET, namespace, name: "web" }, { spec: { version: { value: "1.0.0" } } }, "merge");
      const refused = await waitForReason(client, namespace, "web", "DowngradeRequiresMigration");
      assert.match(readyCondition(refused)?.message ?? "", /to-2-0/);
      assert.equal(refused.status?.version, "2.0.0");

      // A downgrade that crosses no migration proceeds.
      await client.patch({ ...STAGESET, namespace, name: "web" }, { spec: { version: { value: "2.1.0" } } }, "merge");
      await waitFor(async () => ((await getStageSet(client, namespace, "web"))?.status?.version === "2.1.0" ? true : undefined), { description: "2.1.0 deployed", timeoutMs: 30_000 });
      await client.patch({ ...STAGESET, namespace, name: "web" }, { spec: { version: { value: "2.0.1" } } }, "merge");
      const down = await waitFor(
        async () => {
          const s = await getStageSet(client, namespace, "web");
          return s?.status?.version === "2.0.1" && readyCondition(s)?.reason === "Succeeded" ? s : undefined;
        },
        { description: "2.0.1 deployed", timeoutMs: 30_000 },
      );
      assert.equal(down.status?.version, "2.0.1");
    } finally {
      await controller.stop();
    }
  });
});

// Every failure path of a stage gives the documented reason, a message naming
// the stage and the cause, and leaves what earlier stages applied in place.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Stage, StageSet } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { ArtifactServer, tarHeader, type PublishedArtifact } from "../support/artifact-server.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { waitFor } from "../support/wait.js";
import { gzipSync } from "node:zlib";

const STAGESET = { apiVersion: "stages.metio.wtf/v1", kind: "StageSet" } as const;

function configMap(name: string, data: Record<string, string>, extra = ""): string {
  const lines = Object.entries(data).map(([k, v]) => `  ${k}: "${v}"`);
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${extra}data:\n${lines.join("\n")}\n`;
}

describe("stage failures", { concurrency: true }, () => {
  let cluster: TestCluster;
  let server: ArtifactServer;
  let client: KubeClient;

  before(async () => {
    cluster = await testCluster();
    server = new ArtifactServer();
    await server.start();
    client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  });

  after(async () => {
    await server.stop();
    client.close();
  });

  /**
   * A namespace with a healthy first stage ("base", one ConfigMap) and a
   * second stage built by the test; returns once the controller has reported
   * `reason` for the StageSet.
   */
  async function runUntilReason(
    prefix: string,
    second: (namespace: string) => Promise<Omit<Stage, "name">>,
    reason: string,
    extraSpec: Record<string, unknown> = {},
  ) {
    const namespace = await createTestNamespace(cluster, prefix);
    await publishExternalArtifact(client, namespace, "base", server.add(`${namespace}-base`, { "cm.yaml": configMap("base", { a: "1" }) }));
    const stage = await second(namespace);
    const controller = await startTestController(cluster, namespace, ["--runbook-base-url", "https://runbooks.example/stageset"]);
    await client.create({
      ...STAGESET,
      metadata: { name: "app", namespace },
      spec: { retryInterval: "2s", ...extraSpec, stages: [{ name: "base", sourceRef: { name: "base" } }, { name: "second", ...stage }] },
    });
    try {
      const stageSet = await waitFor(
        async () => {
          const s = await client.get<StageSet>({ ...STAGESET, namespace, name: "app" });
          return s?.status?.conditions?.find((c) => c.type === "Ready")?.reason === reason ? s : undefined;
        },
        { description: `StageSet ${namespace}/app to report ${reason}`, timeoutMs: 60_000, intervalMs: 200 },
      );
      return { namespace, stageSet, controller, ready: stageSet.status!.conditions!.find((c) => c.type === "Ready")! };
    } catch (err) {
      await controller.stop();
      const s = await client.get<StageSet>({ ...STAGESET, namespace, name: "app" });
      throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(s?.status)}`);
    }
  }

  async function baseStillApplied(namespace: string): Promise<void> {
    const cm = await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "base" });
    assert.ok(cm, "the first stage's ConfigMap stays applied");
  }

  test("SourceNotReady: a source that is not Ready holds the run (waiting, not failing)", async () => {
    const { ready, stageSet, controller, namespace } = await runUntilReason(
      "fail-source",
      async (ns) => {
        await publishExternalArtifact(client, ns, "pending", undefined, { ready: false });
        return { sourceRef: { name: "pending" } };
      },
      "SourceNotReady",
    );
    try {
      assert.equal(ready.status, "False");
      assert.match(ready.message, /second/);
      assert.match(ready.message, /pending/);
      assert.ok(stageSet.status?.conditions?.some((c) => c.type === "Reconciling" && c.status === "True"), "waiting is Reconciling");
      assert.ok(!stageSet.status?.conditions?.some((c) => c.type === "Stalled"), "waiting is not Stalled");
      // It resumes by itself once the source becomes ready.
      await publishExternalArtifact(client, namespace, "pending", server.add(`${namespace}-pending`, { "cm.yaml": configMap("later", { b: "2" }) }));
      await waitFor(async () => client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "later" }), {
        description: "the held stage to roll out once its source is Ready",
        timeoutMs: 30_000,
      });
    } finally {
      await controller.stop();
    }
  });

  test("ArtifactFailed: a digest that does not match the download", async () => {
    const { ready, controller, namespace } = await runUntilReason(
      "fail-digest",
      async (ns) => {
        const good = server.add(`${ns}-bad-digest`, { "cm.yaml": configMap("x", { a: "1" }) });
        const forged: PublishedArtifact = { ...good, digest: `sha256:${"0".repeat(64)}` };
        await publishExternalArtifact(client, ns, "forged", forged);
        return { sourceRef: { name: "forged" } };
      },
      "ArtifactFailed",
    );
    try {
      assert.match(ready.message, /second/);
      assert.match(ready.message, /digest/i);
      assert.match(ready.message, /\(runbook: https:\/\/runbooks\.example\/stageset\/artifactfailed\/\)$/);
      await baseStillApplied(namespace);
      assert.equal(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "x" }), undefined, "nothing of the failed stage applied");
    } finally {
      await controller.stop();
    }
  });

  test("ArtifactFailed: a tarball with ../ in a path", async () => {
    const { ready, controller, namespace } = await runUntilReason(
      "fail-traversal",
      async (ns) => {
        const body = Buffer.from(configMap("evil", { a: "1" }));
        const tarball = gzipSync(
          Buffer.concat([tarHeader("../evil.yaml", body.length, "0"), body, Buffer.alloc((512 - (body.length % 512)) % 512), Buffer.alloc(1024)]),
        );
        await publishExternalArtifact(client, ns, "evil", server.addTarball(`${ns}-evil`, tarball));
        return { sourceRef: { name: "evil" } };
      },
      "ArtifactFailed",
    );
    try {
      assert.match(ready.message, /second/);
      assert.match(ready.message, /\.\.\/evil\.yaml/);
      await baseStillApplied(namespace);
    } finally {
      await controller.stop();
    }
  });

  test("BuildFailed: a kustomization naming a file that does not exist", async () => {
    const { ready, controller, namespace } = await runUntilReason(
      "fail-build",
      async (ns) => {
        await publishExternalArtifact(
          client,
          ns,
          "broken",
          server.add(`${ns}-broken`, { "kustomization.yaml": "resources:\n  - missing.yaml\n" }),
        );
        return { sourceRef: { name: "broken" } };
      },
      "BuildFailed",
    );
    try {
      assert.match(ready.message, /second/);
      assert.match(ready.message, /missing\.yaml/);
      await baseStillApplied(namespace);
    } finally {
      await controller.stop();
    }
  });

  test("StageFailed on an immutable-field conflict under Fail, then Ready under a Recreate rule", async () => {
    const { ready, controller, namespace } = await runUntilReason(
      "fail-immutable",
      async (ns) => {
        // The ConfigMap exists, immutable, with other data: the apply must change an immutable field.
        await client.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "frozen", namespace: ns }, immutable: true, data: { v: "old" } });
        await publishExternalArtifact(client, ns, "frozen", server.add(`${ns}-frozen`, { "cm.yaml": configMap("frozen", { v: "new" }, "immutable: true\n") }));
        return { sourceRef: { name: "frozen" } };
      },
      "StageFailed",
    );
    try {
      assert.match(ready.message, /second/);
      assert.match(ready.message, /ConfigMap/);
      assert.match(ready.message, /frozen/);
      assert.match(ready.message, /immutable/i);
      await baseStillApplied(namespace);
      const failures = await client.list("v1", "Event", { namespace, fieldSelector: "reason=StageFailed" });
      assert.ok(failures.items.length > 0, "a StageFailed event was emitted");

      const current = await client.get<StageSet>({ ...STAGESET, namespace, name: "app" });
      const stages = current!.spec.stages.map((s) =>
        s.name === "second" ? { ...s, conflictPolicy: { rules: [{ target: { kind: "ConfigMap", name: "frozen" }, action: "Recreate" as const }] } } : s,
      );
      await client.patch({ ...STAGESET, namespace, name: "app" }, { spec: { stages } }, "merge");
      await waitFor(
        async () => {
          const s = await client.get<StageSet>({ ...STAGESET, namespace, name: "app" });
          return s?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
        },
        { description: "the StageSet Ready after the Recreate rule", timeoutMs: 60_000 },
      );
      const frozen = await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "frozen" });
      assert.deepEqual(frozen?.data, { v: "new" });
    } finally {
      await controller.stop();
    }
  });

  test("HealthCheckFailed when a stage's verify runs out of time", async () => {
    const { ready, stageSet, controller, namespace } = await runUntilReason(
      "fail-health",
      async (ns) => {
        await publishExternalArtifact(client, ns, "waits", server.add(`${ns}-waits`, { "cm.yaml": configMap("present", { a: "1" }) }));
        return {
          sourceRef: { name: "waits" },
          readyChecks: { timeout: "2s", checks: [{ apiVersion: "v1", kind: "ConfigMap", name: "never-created" }] },
        };
      },
      "HealthCheckFailed",
    );
    try {
      assert.match(ready.message, /stage "second"/);
      assert.match(ready.message, /never-created/);
      assert.match(ready.message, /2s/);
      assert.equal(stageSet.status?.stages?.find((s) => s.name === "second")?.phase, "Failed");
      await baseStillApplied(namespace);
      assert.ok(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "present" }), "the stage's applied objects stay");
    } finally {
      await controller.stop();
    }
  });
});

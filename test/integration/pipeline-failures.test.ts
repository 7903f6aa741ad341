// Every failure path of a stage gives the documented reason, a message naming
// the stage and the cause, and leaves what earlier stages applied in place.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Stage } from "../../src/api/types.js";
import { tarHeader, type PublishedArtifact } from "../support/artifact-server.js";
import { createTestNamespace } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { configMapFile, getStageSet, readyCondition, STAGESET, usePipelineFixture, waitForEvent, waitForReason } from "../support/pipeline.js";
import { waitFor } from "../support/wait.js";
import { gzipSync } from "node:zlib";

describe("stage failures", { concurrency: true }, () => {
  const fixture = usePipelineFixture();

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
    const namespace = await createTestNamespace(fixture.cluster, prefix);
    await publishExternalArtifact(fixture.client, namespace, "base", fixture.server.add(`${namespace}-base`, configMapFile("base", { a: "1" })));
    const stage = await second(namespace);
    const controller = await startTestController(fixture.cluster, namespace, ["--runbook-base-url", "https://runbooks.example/stageset"]);
    await fixture.client.create({
      ...STAGESET,
      metadata: { name: "app", namespace },
      spec: { retryInterval: "2s", ...extraSpec, stages: [{ name: "base", sourceRef: { name: "base" } }, { name: "second", ...stage }] },
    });
    try {
      const stageSet = await waitForReason(fixture.client, namespace, "app", reason);
      return { namespace, stageSet, controller, ready: readyCondition(stageSet)! };
    } catch (err) {
      await controller.stop();
      const s = await getStageSet(fixture.client, namespace, "app");
      throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(s?.status)}`);
    }
  }

  async function baseStillApplied(namespace: string): Promise<void> {
    const cm = await fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "base" });
    assert.ok(cm, "the first stage's ConfigMap stays applied");
  }

  test("SourceNotReady: a source that is not Ready holds the run (waiting, not failing)", async () => {
    const { ready, stageSet, controller, namespace } = await runUntilReason(
      "fail-source",
      async (ns) => {
        await publishExternalArtifact(fixture.client, ns, "pending", undefined, { ready: false });
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
      await publishExternalArtifact(fixture.client, namespace, "pending", fixture.server.add(`${namespace}-pending`, configMapFile("later", { b: "2" })));
      await waitFor(async () => fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "later" }), {
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
        const good = fixture.server.add(`${ns}-bad-digest`, configMapFile("x", { a: "1" }));
        const forged: PublishedArtifact = { ...good, digest: `sha256:${"0".repeat(64)}` };
        await publishExternalArtifact(fixture.client, ns, "forged", forged);
        return { sourceRef: { name: "forged" } };
      },
      "ArtifactFailed",
    );
    try {
      assert.match(ready.message, /second/);
      assert.match(ready.message, /digest/i);
      assert.match(ready.message, /\(runbook: https:\/\/runbooks\.example\/stageset\/artifactfailed\/\)$/);
      await baseStillApplied(namespace);
      assert.equal(await fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "x" }), undefined, "nothing of the failed stage applied");
    } finally {
      await controller.stop();
    }
  });

  test("ArtifactFailed: a tarball with ../ in a path", async () => {
    const { ready, controller, namespace } = await runUntilReason(
      "fail-traversal",
      async (ns) => {
        const body = Buffer.from(configMapFile("evil", { a: "1" })["evil.yaml"]!);
        const tarball = gzipSync(
          Buffer.concat([tarHeader("../evil.yaml", body.length, "0"), body, Buffer.alloc((512 - (body.length % 512)) % 512), Buffer.alloc(1024)]),
        );
        await publishExternalArtifact(fixture.client, ns, "evil", fixture.server.addTarball(`${ns}-evil`, tarball));
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
          fixture.client,
          ns,
          "broken",
          fixture.server.add(`${ns}-broken`, { "kustomization.yaml": "resources:\n  - missing.yaml\n" }),
        );
        return { sourceRef: { name: "broken" } };
      },
      "BuildFailed",
    );
    try {
      assert.match(ready.message, /second/);
      assert.match(ready.message, /missing\.yaml/);
      await baseStillApplied(namespace);
      // A failure inside a stage is a StageFailed event naming the stage.
      await waitForEvent(fixture.client, namespace, "StageFailed", /stage "second"/);
    } finally {
      await controller.stop();
    }
  });

  test("StageFailed on an immutable-field conflict under Fail, then Ready under a Recreate rule", async () => {
    const { ready, controller, namespace } = await runUntilReason(
      "fail-immutable",
      async (ns) => {
        // The ConfigMap exists, immutable, with other data: the apply must change an immutable field.
        await fixture.client.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "frozen", namespace: ns }, immutable: true, data: { v: "old" } });
        await publishExternalArtifact(fixture.client, ns, "frozen", fixture.server.add(`${ns}-frozen`, configMapFile("frozen", { v: "new" }, "immutable: true\n")));
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
      await waitForEvent(fixture.client, namespace, "StageFailed", /frozen/);

      const current = await getStageSet(fixture.client, namespace, "app");
      const stages = current!.spec.stages.map((s) =>
        s.name === "second" ? { ...s, conflictPolicy: { rules: [{ target: { kind: "ConfigMap", name: "frozen" }, action: "Recreate" as const }] } } : s,
      );
      await fixture.client.patch({ ...STAGESET, namespace, name: "app" }, { spec: { stages } }, "merge");
      await waitForReason(fixture.client, namespace, "app", "Succeeded");
      const frozen = await fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "frozen" });
      assert.deepEqual(frozen?.data, { v: "new" });
    } finally {
      await controller.stop();
    }
  });

  test("HealthCheckFailed when a stage's verify runs out of time", async () => {
    const { ready, stageSet, controller, namespace } = await runUntilReason(
      "fail-health",
      async (ns) => {
        await publishExternalArtifact(fixture.client, ns, "waits", fixture.server.add(`${ns}-waits`, configMapFile("present", { a: "1" })));
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
      assert.ok(await fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "present" }), "the stage's applied objects stay");
    } finally {
      await controller.stop();
    }
  });
});

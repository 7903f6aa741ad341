// Rollback on failure with the controller in-process: a bad revision whose
// second stage fails health is rolled back stage by stage to the last good
// snapshot, parked until something changes, retried on `reconcile --force`;
// when the producer no longer serves the good artifact it comes from the
// rollback store, and without one the reason is PreviousRevisionUnavailable.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { runCli } from "../support/cli.js";
import { createTestNamespace } from "../support/cluster.js";
import { reconcileCount, startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { S3Server } from "../support/s3-server.js";
import { configMapFile, getStageSet, readyCondition, STAGESET, usePipelineFixture, waitForEvent, waitForReason } from "../support/pipeline.js";
import { waitFor } from "../support/wait.js";
import { deploymentFile } from "../support/workloads.js";

describe("rollback on failure", { concurrency: true }, () => {
  const fixture = usePipelineFixture();

  const setUp = async (prefix: string, flags: string[] = []) => {
    const namespace = await createTestNamespace(fixture.cluster, prefix);
    const { client, server } = fixture;
    const config = await publishExternalArtifact(client, namespace, "config", server.add(`${namespace}-config`, configMapFile("settings", { mode: "good" }), "good"));
    const app = await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, deploymentFile("web", { image: "registry.invalid/web:1", schedulable: true }), "good"));
    const controller = await startTestController(fixture.cluster, namespace, flags);
    await client.create({
      ...STAGESET,
      metadata: { name: "shop", namespace },
      spec: {
        rollbackOnFailure: true,
        retryInterval: "1s",
        stages: [
          { name: "config", sourceRef: { name: "config" } },
          { name: "app", sourceRef: { name: "app" }, timeout: "3s" },
        ],
      },
    });
    const ready = await waitForReason(client, namespace, "shop", "Succeeded", 90_000);
    assert.deepEqual(ready.status?.lastAppliedSnapshot?.map((s) => [s.stage, s.revision]), [["config", "good"], ["app", "good"]]);
    const goodUrls = [(config.status as { artifact: { url: string } }).artifact.url, (app.status as { artifact: { url: string } }).artifact.url];
    const publishBad = async () => {
      await publishExternalArtifact(client, namespace, "config", server.add(`${namespace}-config`, configMapFile("settings", { mode: "bad" }), "bad"));
      await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, deploymentFile("web", { image: "registry.invalid/web:2", schedulable: false }), "bad"));
    };
    return { namespace, controller, goodUrls, publishBad };
  };

  const liveState = async (namespace: string) => {
    const cm = await fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "settings" });
    const dep = await fixture.client.get({ apiVersion: "apps/v1", kind: "Deployment", namespace, name: "web" });
    const spec = dep?.spec as { template: { spec: { containers: { image: string }[]; nodeSelector?: unknown } } };
    return { mode: (cm?.data as Record<string, string>).mode, image: spec.template.spec.containers[0]!.image, nodeSelector: spec.template.spec.nodeSelector };
  };

  test("a bad revision failing in stage 2 is rolled back in both stages, parked, retried on --force, and a fixed revision rolls out", async () => {
    const { namespace, controller, publishBad } = await setUp("rollback");
    const { client, server } = fixture;
    try {
      await publishBad();
      const rolled = await waitForReason(client, namespace, "shop", "RolledBack", 90_000);
      const message = readyCondition(rolled)?.message ?? "";
      assert.match(message, /rolled back stage "config" bad → good, stage "app" bad → good; the run failed: stage "app": .*not ready/);
      assert.deepEqual(await liveState(namespace), { mode: "good", image: "registry.invalid/web:1", nodeSelector: undefined }, "both stages are back at the good revision");
      assert.deepEqual(rolled.status?.parkedRevisions, { [`${namespace}/config`]: "bad", [`${namespace}/app`]: "bad" });
      assert.match(rolled.status?.lastRollback?.message ?? "", /rolled back/);
      await waitForEvent(client, namespace, "RolledBack", /rolled back stage "config"/);

      // Parked: a later run (here a plain reconcile request) does not apply the bad revision again.
      const runs = await reconcileCount(controller);
      await client.patch({ ...STAGESET, namespace, name: "shop" }, { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "plain" } } }, "merge");
      const parked = await waitFor(
        async () => {
          const s = await getStageSet(client, namespace, "shop");
          return s?.status?.lastHandledReconcileAt === "plain" ? s : undefined;
        },
        { description: "the plain reconcile request handled", timeoutMs: 30_000 },
      );
      assert.ok((await reconcileCount(controller)) > runs, "a run happened");
      assert.equal((await liveState(namespace)).mode, "good", "the parked revision was not retried");
      assert.equal(parked.status?.lastRollback?.at, rolled.status?.lastRollback?.at, "no second rollback while parked");
      assert.equal(readyCondition(parked)?.reason, "RolledBack");

      // `reconcile --force` retries it once (and it rolls back again).
      const forced = await runCli(["reconcile", "shop", "-n", namespace, "--force"], { kubeconfig: fixture.cluster.kubeconfigPath });
      assert.equal(forced.code, 0, forced.stderr);
      await waitFor(
        async () => {
          const s = await getStageSet(client, namespace, "shop");
          return s?.status?.lastRollback?.at !== rolled.status?.lastRollback?.at && readyCondition(s)?.reason === "RolledBack" ? s : undefined;
        },
        { description: "a second rollback after --force", timeoutMs: 60_000 },
      );
      const get = await runCli(["get", "shop", "-n", namespace], { kubeconfig: fixture.cluster.kubeconfigPath });
      assert.match(get.stdout, /RolledBack/);
      assert.match(get.stdout, /Rolled back: .*rolled back stage "config" bad → good/);
      assert.match(get.stdout, new RegExp(`Parked: +${namespace}/config at bad, ${namespace}/app at bad|Parked: +${namespace}/app at bad, ${namespace}/config at bad`));

      // A fixed revision rolls out normally and clears the parked revisions.
      await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, deploymentFile("web", { image: "registry.invalid/web:3", schedulable: true }), "fixed"));
      const fixed = await waitForReason(client, namespace, "shop", "Succeeded", 90_000);
      assert.equal(fixed.status?.parkedRevisions, undefined);
      assert.deepEqual((await liveState(namespace)).image, "registry.invalid/web:3");
    } finally {
      await controller.stop();
    }
  });

  test("the producer no longer serves the good artifact and no store is configured: PreviousRevisionUnavailable names the stage and what was tried", async () => {
    const setup = await setUp("rollback-none");
    const { namespace, goodUrls, publishBad } = setup;
    // A new controller process: its artifact cache no longer holds the good trees either.
    await setup.controller.stop();
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      for (const url of goodUrls) assert.ok(fixture.server.remove(url));
      await publishBad();
      const s = await waitForReason(fixture.client, namespace, "shop", "PreviousRevisionUnavailable", 90_000);
      assert.match(readyCondition(s)?.message ?? "", /stage "config" cannot go back to good: its producer no longer serves it .*no rollback store is configured/);
    } finally {
      await controller.stop();
    }
  });

  test("S3 store (SeaweedFS): restored from it when the producer is gone; an SSE mode the server refuses is a RollbackStoreFailed event and the rollout stays Ready", async () => {
    const s3 = new S3Server();
    await s3.start();
    const s3Flags = (sse: string) => [
      "--rollback-store-s3-endpoint",
      s3.endpoint,
      "--rollback-store-s3-bucket",
      s3.buckets[0]!,
      "--rollback-store-s3-prefix",
      "rollbacks",
      "--rollback-store-s3-use-ssl=false",
      "--rollback-store-s3-region",
      "us-east-1",
      "--rollback-store-s3-access-key",
      s3.accessKey,
      "--rollback-store-s3-secret-key",
      s3.secretKey,
      "--rollback-store-s3-sse",
      sse,
    ];
    try {
      const setup = await setUp("rollback-s3", s3Flags("s3"));
      const { namespace, goodUrls, publishBad } = setup;
      await setup.controller.stop();
      const controller = await startTestController(fixture.cluster, namespace, s3Flags("s3"));
      try {
        for (const url of goodUrls) assert.ok(fixture.server.remove(url));
        await publishBad();
        await waitForReason(fixture.client, namespace, "shop", "RolledBack", 90_000);
        assert.deepEqual(await liveState(namespace), { mode: "good", image: "registry.invalid/web:1", nodeSelector: undefined });
      } finally {
        await controller.stop();
      }

      // SSE-KMS without a KMS behind the server: the write is refused, the rollout still succeeds.
      const refusedNs = await createTestNamespace(fixture.cluster, "rollback-s3-sse");
      await publishExternalArtifact(fixture.client, refusedNs, "config", fixture.server.add(`${refusedNs}-config`, configMapFile("settings", { mode: "good" }), "good"));
      const refusing = await startTestController(fixture.cluster, refusedNs, [...s3Flags("kms"), "--rollback-store-s3-sse-kms-key", "alias/none"]);
      try {
        await fixture.client.create({ ...STAGESET, metadata: { name: "shop", namespace: refusedNs }, spec: { stages: [{ name: "config", sourceRef: { name: "config" } }] } });
        await waitForReason(fixture.client, refusedNs, "shop", "Succeeded", 60_000);
        const event = await waitForEvent(fixture.client, refusedNs, "RollbackStoreFailed", /stage "config": storing good .* in the s3 rollback store/);
        const text = JSON.stringify(event);
        assert.ok(!text.includes(s3.secretKey) && !text.includes(s3.accessKey), "no credentials in the event");
      } finally {
        await refusing.stop();
      }
    } finally {
      await s3.stop();
    }
  });

  test("the producer no longer serves the good artifact: it is restored from the filesystem store", async () => {
    const storeDir = mkdtempSync(join(tmpdir(), "stageset-rollback-store-"));
    const setup = await setUp("rollback-fs", ["--rollback-store-path", storeDir]);
    const { namespace, goodUrls, publishBad } = setup;
    await setup.controller.stop();
    const controller = await startTestController(fixture.cluster, namespace, ["--rollback-store-path", storeDir]);
    try {
      for (const url of goodUrls) assert.ok(fixture.server.remove(url));
      await publishBad();
      await waitForReason(fixture.client, namespace, "shop", "RolledBack", 90_000);
      assert.deepEqual(await liveState(namespace), { mode: "good", image: "registry.invalid/web:1", nodeSelector: undefined });
    } finally {
      await controller.stop();
      rmSync(storeDir, { recursive: true, force: true });
    }
  });
});

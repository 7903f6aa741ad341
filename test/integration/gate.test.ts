// The gate endpoint of a running controller, asked over HTTP the way Flagger
// and Argo Rollouts do: 200 for a stage Ready at its pinned revision, 403 for
// one still verifying, an unknown StageSet or stage; the JSON form always 200
// with the answer in the body; a stage held by an update window is Ready at
// its pinned revision; anything but GET is 405.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createTestNamespace } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { configMapFile, STAGESET, usePipelineFixture, waitForReason } from "../support/pipeline.js";
import { waitFor } from "../support/wait.js";
import { deploymentFile } from "../support/workloads.js";

describe("gate endpoint", () => {
  const fixture = usePipelineFixture();

  test("200/403/405 and the JSON body for a Ready stage, a verifying one, a window-held one and unknown names", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "gate");
    const { client, server } = fixture;
    await publishExternalArtifact(client, namespace, "config", server.add(`${namespace}-config`, configMapFile("settings", { a: "1" }), "c1"));
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, deploymentFile("web", { schedulable: false }), "a1"));
    const controller = await startTestController(fixture.cluster, namespace);
    const base = `http://127.0.0.1:${controller.gatePort}/gate/${namespace}`;
    const ask = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(`${base}/${path}`, init);
      return { status: res.status, body: await res.text() };
    };
    const askJson = async (path: string) => {
      const res = await fetch(`${base}/${path}`, { headers: { accept: "application/json" } });
      assert.equal(res.status, 200, "the JSON form always answers 200");
      return (await res.json()) as { ready: boolean; stage: string; phase: string; revision: string; message: string };
    };
    try {
      await client.create({
        ...STAGESET,
        metadata: { name: "shop", namespace },
        spec: {
          stages: [
            { name: "config", sourceRef: { name: "config" } },
            { name: "app", sourceRef: { name: "app" }, timeout: "1h" },
          ],
        },
      });
      // config is Ready while app waits in verify for a Deployment that never becomes Available.
      await waitFor(async () => ((await askJson("shop/app")).phase === "Verifying" ? true : undefined), { description: "stage app verifying", timeoutMs: 60_000 });
      assert.equal((await ask("shop/config")).status, 200);
      const verifying = await ask("shop/app");
      assert.equal(verifying.status, 403);
      assert.match(verifying.body, /^not ready: /);
      const json = await askJson("shop/app");
      assert.equal(json.ready, false);
      assert.equal(json.stage, "app");
      assert.deepEqual(await askJson("shop/config"), { ready: true, stage: "config", phase: "Ready", revision: "c1", message: "Ready at revision c1" });

      for (const unknown of ["shop/nope", "nobody/app"]) {
        assert.equal((await ask(unknown)).status, 403, unknown);
        const answer = await askJson(unknown);
        assert.equal(answer.ready, false);
        assert.match(answer.message, /not found|has no stage "nope"/);
      }
      assert.equal((await ask("shop/config", { method: "POST", body: "x" })).status, 405);
      assert.equal((await ask("shop/config", { method: "DELETE" })).status, 405);
      assert.equal((await fetch(`http://127.0.0.1:${controller.gatePort}/gate/${namespace}/shop`)).status, 404);

      // A window holds config's next revision: config stays Ready at its pinned revision c1.
      await client.patch({ ...STAGESET, namespace, name: "shop" }, { spec: { stages: [{ name: "config", sourceRef: { name: "config" } }] } }, "merge");
      await waitForReason(client, namespace, "shop", "Succeeded");
      const from = new Date(Date.now() - 60_000).toISOString();
      const to = new Date(Date.now() + 3_600_000).toISOString();
      await client.patch({ ...STAGESET, namespace, name: "shop" }, { spec: { updateWindows: [{ type: "Deny", from, to }] } }, "merge");
      await waitForReason(client, namespace, "shop", "Succeeded");
      await publishExternalArtifact(client, namespace, "config", server.add(`${namespace}-config`, configMapFile("settings", { a: "2" }), "c2"));
      await waitForReason(client, namespace, "shop", "UpdateDeferred");
      const held = await askJson("shop/config");
      assert.equal(held.ready, true);
      assert.equal(held.revision, "c1");
      assert.match(held.message, /pinned revision c1; a newer revision is held/);
      assert.equal((await ask("shop/config")).status, 200);
    } finally {
      await controller.stop();
    }
  });
});

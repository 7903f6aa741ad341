// kstatus's Ready-condition fallback in the pipeline
// (../shared/cases/apply-correctness/ready-false-resource): a custom resource
// that reports only `Ready=False` (a cert-manager Certificate being issued)
// holds its stage's verify, and so the next stage, until it turns True.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { stringify } from "yaml";
import { createTestNamespace } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { getStageSet, STAGESET, usePipelineFixture, waitForReason } from "../support/pipeline.js";
import { widgetCrd } from "../support/widgets.js";
import { waitFor } from "../support/wait.js";

describe("Ready condition of a custom resource", { concurrency: true }, () => {
  const fixture = usePipelineFixture();

  test("a custom resource with Ready=False holds the stage's verify, and the next stage, until it turns True", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "ready-cond");
    const group = `${namespace}.example.test`;
    // No status subresource: the artifact sets the status the "issuer" reports at first, as certificate.yaml of the case does.
    const certificate = {
      apiVersion: `${group}/v1`,
      kind: "Widget",
      metadata: { name: "web-tls" },
      spec: { secretName: "web-tls" },
      status: { conditions: [{ type: "Ready", status: "False", reason: "DoesNotExist", message: "Issuing certificate as Secret does not exist" }] },
    };
    await publishExternalArtifact(
      fixture.client,
      namespace,
      "certs",
      fixture.server.add(`${namespace}-certs`, { "crd.yaml": stringify(widgetCrd(group)), "certificate.yaml": stringify(certificate) }, "certs-v1"),
    );
    await publishExternalArtifact(
      fixture.client,
      namespace,
      "app",
      fixture.server.add(`${namespace}-app`, { "app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-settings\ndata:\n  tls: web-tls\n" }, "app-v1"),
    );
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      await fixture.client.create({
        ...STAGESET,
        metadata: { name: "tls", namespace },
        spec: {
          timeout: "5m",
          stages: [
            { name: "certs", sourceRef: { name: "certs" } },
            { name: "app", sourceRef: { name: "app" } },
          ],
        },
      });
      const waiting = await waitFor(
        async () => {
          const stage = (await getStageSet(fixture.client, namespace, "tls"))?.status?.stages?.find((s) => s.name === "certs");
          return stage?.phase === "Verifying" && stage.message?.includes("Widget") ? stage : undefined;
        },
        { description: "stage certs Verifying, waiting for the Widget", timeoutMs: 60_000, intervalMs: 200 },
      );
      assert.match(waiting.message ?? "", /web-tls \(InProgress: Issuing certificate as Secret does not exist\)/);
      const ref = { apiVersion: `${group}/v1`, kind: "Widget", namespace, name: "web-tls" };
      assert.ok(await fixture.client.get(ref), "the certificate is applied");
      assert.equal(await fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "app-settings" }), undefined, "the next stage has not started");

      await fixture.client.patch(ref, { status: { conditions: [{ type: "Ready", status: "True", reason: "Ready", message: "Certificate is up to date" }] } }, "merge");
      const ready = await waitForReason(fixture.client, namespace, "tls", "Succeeded", 60_000);
      assert.deepEqual(ready.status?.stages?.map((s) => [s.name, s.phase]), [["certs", "Ready"], ["app", "Ready"]]);
      assert.ok(await fixture.client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "app-settings" }), "the next stage ran once the Widget was Ready");
    } finally {
      await controller.stop();
    }
  });
});

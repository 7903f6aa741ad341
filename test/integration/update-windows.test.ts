// Update windows with the controller in-process against the real API server:
// a closed window holds a new revision (the old objects stay, pendingUpdate
// and the UpdateDeferred event record it), drift on the pinned state is
// corrected with windowScope Updates and left alone with All, update-now
// ships a held revision once, and a window opening later ships it without
// any annotation (time is a FakeClock, advanced past the opening).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { KubeObject, StageSet } from "../../src/api/types.js";
import { runCli } from "../support/cli.js";
import { createTestNamespace } from "../support/cluster.js";
import { startTestController, waitForIdle } from "../support/controller.js";
import { FakeClock } from "../support/fake-clock.js";
import { publishExternalArtifact } from "../support/flux.js";
import { configMapFile, getStageSet, readyCondition, STAGESET, usePipelineFixture, waitForEvent, waitForReason } from "../support/pipeline.js";
import { waitFor } from "../support/wait.js";

describe("update windows", { concurrency: true }, () => {
  const fixture = usePipelineFixture();

  const publish = (namespace: string, revision: string) =>
    publishExternalArtifact(fixture.client, namespace, "app", fixture.server.add(`${namespace}-app`, configMapFile("settings", { revision }), revision));

  const liveRevision = async (namespace: string) => {
    const cm = await fixture.client.get<KubeObject & { data?: Record<string, string> }>({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "settings" });
    return cm?.data?.revision;
  };

  const handEdit = (namespace: string) =>
    fixture.client.patch({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "settings" }, { data: { revision: "hand-edited" } }, "merge", { fieldManager: "kubectl-edit" });

  /** Asks for a run and waits until the controller has handled that request. */
  const reconcileNow = async (namespace: string, token: string): Promise<StageSet> => {
    await fixture.client.patch({ ...STAGESET, namespace, name: "web" }, { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": token } } }, "merge");
    return waitFor(
      async () => {
        const s = await getStageSet(fixture.client, namespace, "web");
        return s?.status?.lastHandledReconcileAt === token ? s : undefined;
      },
      { description: `reconcile request ${token} handled`, timeoutMs: 30_000 },
    );
  };

  test("a Deny window holds a new revision, drift on the pinned state is still corrected, and the window's end ships it", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "window-deny");
    const { client } = fixture;
    const t0 = Date.now();
    const clock = new FakeClock({ start: t0 });
    const freezeFrom = new Date(t0 + 10 * 60_000).toISOString();
    const freezeTo = new Date(t0 + 11 * 60_000).toISOString();
    await publish(namespace, "r1");
    const controller = await startTestController(fixture.cluster, namespace, ["--default-interval", "1h"], { clock });
    try {
      await client.create({
        ...STAGESET,
        metadata: { name: "web", namespace },
        spec: { updateWindows: [{ type: "Deny", from: freezeFrom, to: freezeTo }], stages: [{ name: "app", sourceRef: { name: "app" } }] },
      });
      await waitForReason(client, namespace, "web", "Succeeded");
      assert.equal(await liveRevision(namespace), "r1", "outside the window the first revision rolls out");

      // Into the freeze; r2 arrives and is held.
      await waitForIdle(controller);
      await clock.advanceTo(t0 + 10 * 60_000 + 5_000);
      await publish(namespace, "r2");
      const held = await waitForReason(client, namespace, "web", "UpdateDeferred");
      assert.deepEqual(held.status?.pendingUpdate, { revisions: { [`${namespace}/app`]: "r2" }, nextWindowOpens: freezeTo });
      assert.match(readyCondition(held)?.message ?? "", new RegExp(`update held by Deny window spec\\.updateWindows\\[0\\].*source ${namespace}/app revision r2 waits; it ships when that window ends`));
      assert.equal(readyCondition(held)?.status, "False");
      assert.deepEqual(held.status?.lastAppliedRevisions, { [`${namespace}/app`]: "r1" });
      assert.equal(await liveRevision(namespace), "r1", "the held revision is not applied");
      await waitForEvent(client, namespace, "UpdateDeferred", /revision r2 waits/);
      const get = await runCli(["get", "-n", namespace], { kubeconfig: fixture.cluster.kubeconfigPath });
      assert.match(get.stdout, new RegExp(`web\\s+False\\s+UpdateDeferred\\s+1/1\\s+-\\s+held until ${freezeTo.replace(/\./g, "\\.")}`));

      // windowScope Updates: a hand edit is corrected back to the pinned r1, not to r2.
      await handEdit(namespace);
      const corrected = await reconcileNow(namespace, "drift");
      assert.equal(await liveRevision(namespace), "r1", "drift correction re-applied the pinned snapshot");
      assert.equal(readyCondition(corrected)?.reason, "UpdateDeferred");
      const deferredEvents = (await client.list("v1", "Event", { namespace, fieldSelector: "reason=UpdateDeferred" })).items;
      assert.equal(deferredEvents.reduce((n, e) => n + Number((e as { count?: number }).count ?? 1), 0), 1, "one UpdateDeferred event for the held revision");
      const deferred = (await controller.metrics.updateDeferredTotal.get()).values.find((v) => v.labels.namespace === namespace);
      assert.equal(deferred?.value, 1);

      // The window closes a minute later: the requeue scheduled for that moment ships r2, no annotation needed.
      await waitForIdle(controller);
      await clock.advanceTo(Date.parse(freezeTo) + 2_000);
      const shipped = await waitFor(
        async () => {
          const s = await getStageSet(client, namespace, "web");
          return readyCondition(s)?.reason === "Succeeded" && s?.status?.lastAppliedRevisions?.[`${namespace}/app`] === "r2" ? s : undefined;
        },
        { description: "r2 rolled out once the window ended", timeoutMs: 30_000 },
      );
      assert.equal(shipped.status?.pendingUpdate, undefined);
      assert.equal(await liveRevision(namespace), "r2");
    } finally {
      await controller.stop();
    }
  });

  test("windowScope All applies nothing while held; update-now ships the held revision once", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "window-all");
    const { client } = fixture;
    await publish(namespace, "r1");
    const controller = await startTestController(fixture.cluster, namespace, ["--default-interval", "1h"]);
    try {
      await client.create({ ...STAGESET, metadata: { name: "web", namespace }, spec: { stages: [{ name: "app", sourceRef: { name: "app" } }] } });
      await waitForReason(client, namespace, "web", "Succeeded");
      // A hard freeze around now, added to the spec: no new revision, so this change itself rolls out.
      const from = new Date(Date.now() - 3_600_000).toISOString();
      const to = new Date(Date.now() + 3_600_000).toISOString();
      await client.patch({ ...STAGESET, namespace, name: "web" }, { spec: { windowScope: "All", updateWindows: [{ type: "Deny", from, to }] } }, "merge");
      await waitForReason(client, namespace, "web", "Succeeded");

      await publish(namespace, "r2");
      const held = await waitForReason(client, namespace, "web", "UpdateDeferred");
      assert.match(readyCondition(held)?.message ?? "", /windowScope: All, so nothing is applied/);
      await handEdit(namespace);
      await reconcileNow(namespace, "frozen");
      assert.equal(await liveRevision(namespace), "hand-edited", "a hard freeze does not correct drift either");

      const cli = await runCli(["reconcile", "web", "-n", namespace, "--update-now"], { kubeconfig: fixture.cluster.kubeconfigPath });
      assert.equal(cli.code, 0, cli.stderr);
      const shipped = await waitFor(
        async () => {
          const s = await getStageSet(client, namespace, "web");
          return readyCondition(s)?.reason === "Succeeded" && s?.status?.lastAppliedRevisions?.[`${namespace}/app`] === "r2" ? s : undefined;
        },
        { description: "r2 shipped by update-now", timeoutMs: 30_000 },
      );
      const token = shipped.metadata.annotations?.["stages.metio.wtf/update-now"];
      assert.ok(token);
      assert.equal(shipped.status?.lastHandledUpdateOverride, token);
      assert.equal(await liveRevision(namespace), "r2");

      // The override was used up: the next revision is held again.
      await publish(namespace, "r3");
      const again = await waitForReason(client, namespace, "web", "UpdateDeferred");
      assert.deepEqual(again.status?.pendingUpdate?.revisions, { [`${namespace}/app`]: "r3" });
      assert.equal(await liveRevision(namespace), "r2");
    } finally {
      await controller.stop();
    }
  });

  test("a window that never opens within the horizon, and an Allow-list outside its window, hold a first deployment entirely", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "window-first");
    const { client } = fixture;
    await publish(namespace, "r1");
    const controller = await startTestController(fixture.cluster, namespace, ["--default-interval", "1h"]);
    try {
      // An Allow window that opened and closed in the past: updates are never allowed again.
      await client.create({
        ...STAGESET,
        metadata: { name: "web", namespace },
        spec: { updateWindows: [{ type: "Allow", from: "2020-01-01T00:00:00Z", to: "2020-01-02T00:00:00Z" }], stages: [{ name: "app", sourceRef: { name: "app" } }] },
      });
      const held = await waitForReason(client, namespace, "web", "UpdateDeferred");
      assert.equal(held.status?.pendingUpdate?.nextWindowOpens, undefined);
      assert.match(readyCondition(held)?.message ?? "", /stagesetctl reconcile --update-now/);
      assert.match(readyCondition(held)?.message ?? "", /stage "app" never applied, so held entirely/);
      assert.equal(await liveRevision(namespace), undefined, "nothing was applied");
    } finally {
      await controller.stop();
    }
  });
});

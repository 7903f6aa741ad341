// The event recorder against a real API server: Events kubectl describe
// would show, repeats folded into one object's count, long messages cut.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { EventRecorder, MAX_EVENT_MESSAGE } from "../../src/kube/events.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";

let client: KubeClient;
let namespace: string;
let regarding: KubeObject;

before(async () => {
  const cluster = await testCluster();
  client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  namespace = await createTestNamespace(cluster, "kube-events");
  regarding = await client.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "subject", namespace } });
});

after(() => client.close());

interface CoreEvent extends KubeObject {
  type: string;
  reason: string;
  message: string;
  count: number;
  involvedObject: { kind: string; name: string; uid: string };
  reportingComponent: string;
  source: { component: string };
}

const eventsFor = async (name: string) =>
  (await client.list<CoreEvent>("v1", "Event", { namespace, fieldSelector: `involvedObject.name=${name}` })).items;

describe("EventRecorder", () => {
  test("writes core/v1 Events about the object, folding repeats into one count", async () => {
    const errors: unknown[] = [];
    const recorder = new EventRecorder(client, { aggregationWindowMs: 200, onError: (e) => errors.push(e) });
    client.resetStats();
    for (let i = 0; i < 20; i++) recorder.warning(regarding, "StageFailed", "stage app: apply failed");
    recorder.normal(regarding, "Succeeded", "all stages Ready");
    await recorder.flush();
    assert.deepEqual(errors, []);
    const stats = client.stats();
    assert.equal(stats.create, 2, "one object per distinct event");
    assert.ok(stats.patch <= 2, `a storm of 19 repeats cost ${stats.patch} count updates`);

    const events = await eventsFor("subject");
    const failed = events.find((e) => e.reason === "StageFailed")!;
    assert.equal(failed.type, "Warning");
    assert.equal(failed.count, 20);
    assert.equal(failed.message, "stage app: apply failed");
    assert.deepEqual(
      [failed.involvedObject.kind, failed.involvedObject.name, failed.involvedObject.uid],
      ["ConfigMap", "subject", regarding.metadata.uid],
    );
    assert.equal(failed.reportingComponent, "stageset-controller");
    assert.equal(failed.source.component, "stageset-controller");
    const ok = events.find((e) => e.reason === "Succeeded")!;
    assert.equal(ok.type, "Normal");
    assert.equal(ok.count, 1);
    await recorder.close();
  });

  test("repeats after the window update the same Event's count", async () => {
    const recorder = new EventRecorder(client, { aggregationWindowMs: 50 });
    const other = { apiVersion: "v1", kind: "ConfigMap", name: "other", namespace };
    recorder.normal(other, "UpdateDeferred", "window closed");
    await recorder.flush();
    await new Promise((r) => setTimeout(r, 80));
    recorder.normal(other, "UpdateDeferred", "window closed");
    await new Promise((r) => setTimeout(r, 120));
    await recorder.flush();
    const events = await eventsFor("other");
    assert.equal(events.length, 1);
    assert.equal(events[0]?.count, 2);
  });

  test("cuts messages to the API's limit", async () => {
    const recorder = new EventRecorder(client);
    const long = { apiVersion: "v1", kind: "ConfigMap", name: "long", namespace };
    recorder.warning(long, "BuildFailed", "x".repeat(5000));
    await recorder.close();
    const [event] = await eventsFor("long");
    assert.equal(event?.message.length, MAX_EVENT_MESSAGE);
    assert.ok(event?.message.endsWith("…"));
    recorder.warning(long, "BuildFailed", "after close");
    await recorder.flush();
    assert.equal((await eventsFor("long")).length, 1, "a closed recorder writes nothing");
  });
});

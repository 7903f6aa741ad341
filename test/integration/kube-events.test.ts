// The event recorder against a real API server: Events kubectl describe
// would show, repeats folded into one object's count, long messages cut. The
// aggregation window runs on a FakeClock the test advances.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { EventRecorder, MAX_EVENT_MESSAGE } from "../../src/kube/events.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";
import { FakeClock } from "../support/fake-clock.js";
import { waitFor } from "../support/wait.js";

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
  firstTimestamp: string;
  lastTimestamp: string;
}

const eventsFor = async (name: string) =>
  (await client.list<CoreEvent>("v1", "Event", { namespace, fieldSelector: `involvedObject.name=${name}` })).items;

describe("EventRecorder", () => {
  test("writes core/v1 Events about the object, folding repeats into one count written when the window ends", async () => {
    const clock = new FakeClock();
    const errors: unknown[] = [];
    const recorder = new EventRecorder(client, { aggregationWindowMs: 10_000, clock, onError: (e) => errors.push(e) });
    client.resetStats();
    recorder.warning(regarding, "StageFailed", "stage app: apply failed");
    await clock.advance(4_000);
    for (let i = 0; i < 19; i++) recorder.warning(regarding, "StageFailed", "stage app: apply failed");
    recorder.normal(regarding, "Succeeded", "all stages Ready");
    await waitFor(async () => (await eventsFor("subject")).length === 2, { description: "both Events created", timeoutMs: 30_000 });
    await clock.advance(5_999);
    assert.equal(clock.pending, 1, "the count update waits for the end of the window");
    assert.equal(client.stats().patch, 0, "no count update inside the window");
    await clock.advance(1);
    await waitFor(async () => (await eventsFor("subject")).find((e) => e.reason === "StageFailed")?.count === 20, {
      description: "the count update at the end of the window",
      timeoutMs: 30_000,
    });
    await recorder.flush();
    assert.deepEqual(errors, []);
    const stats = client.stats();
    assert.equal(stats.create, 2, "one object per distinct event");
    assert.equal(stats.patch, 1, "a storm of 19 repeats cost one count update");

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
    assert.equal(failed.firstTimestamp, "2024-01-01T00:00:00Z", "stamped with the recorder's clock");
    assert.equal(failed.lastTimestamp, "2024-01-01T00:00:04Z", "the last repeat's time");
    const ok = events.find((e) => e.reason === "Succeeded")!;
    assert.equal(ok.type, "Normal");
    assert.equal(ok.count, 1);
    await recorder.close();
  });

  test("a repeat after the window updates the same Event's count at once", async () => {
    const clock = new FakeClock();
    const recorder = new EventRecorder(client, { aggregationWindowMs: 10_000, clock });
    const other = { apiVersion: "v1", kind: "ConfigMap", name: "other", namespace };
    recorder.normal(other, "UpdateDeferred", "window closed");
    await recorder.flush();
    await clock.advance(60_000);
    recorder.normal(other, "UpdateDeferred", "window closed");
    assert.equal(clock.pending, 0, "written without waiting for a window");
    await recorder.flush();
    const events = await eventsFor("other");
    assert.equal(events.length, 1);
    assert.equal(events[0]?.count, 2);
    assert.equal(events[0]?.lastTimestamp, "2024-01-01T00:01:00Z");
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

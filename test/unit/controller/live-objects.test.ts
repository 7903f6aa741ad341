import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../../../src/api/types.js";
import { firstFromObserved, type LiveFetch } from "../../../src/controller/live-objects.js";
import { objectId, type ObjectRef } from "../../../src/health/index.js";

const configMap = (name: string, resourceVersion: string): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "apps", resourceVersion },
});
const ref = (kind: string, name: string, apiVersion = "v1"): ObjectRef => ({ apiVersion, kind, name, namespace: "apps" });

/** A LiveFetch over a fixed cluster state that records what it was asked for. */
function recordingFetch(state: ReadonlyMap<string, KubeObject>): { fetch: LiveFetch; asked: string[][] } {
  const asked: string[][] = [];
  const fetch: LiveFetch = (targets) => {
    asked.push(targets.map((t) => objectId(t)));
    return Promise.resolve(new Map(targets.map((t) => [objectId(t), state.get(objectId(t))] as const)));
  };
  return { fetch, asked };
}

describe("firstFromObserved", () => {
  it("answers the first read from the apply's answers, reading only what the apply did not return", async () => {
    const applied = configMap("a", "10");
    const observed = new Map([[objectId(ref("ConfigMap", "a")), applied]]);
    const cluster = new Map([
      [objectId(ref("ConfigMap", "a")), configMap("a", "11")],
      [objectId(ref("Deployment", "web", "apps/v1")), { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "apps" } }],
    ]);
    const { fetch, asked } = recordingFetch(cluster);
    const read = firstFromObserved(observed, fetch);

    const first = await read([ref("ConfigMap", "a"), ref("Deployment", "web", "apps/v1"), ref("Secret", "gone")]);
    assert.equal(first.get(objectId(ref("ConfigMap", "a")))?.metadata.resourceVersion, "10", "the apply's answer, not a read");
    assert.equal(first.get(objectId(ref("Deployment", "web", "apps/v1")))?.kind, "Deployment");
    assert.ok(first.has(objectId(ref("Secret", "gone"))) && first.get(objectId(ref("Secret", "gone"))) === undefined, "a missing object is read and stays missing");
    assert.deepEqual(asked, [[objectId(ref("Deployment", "web", "apps/v1")), objectId(ref("Secret", "gone"))]]);

    const second = await read([ref("ConfigMap", "a")]);
    assert.equal(second.get(objectId(ref("ConfigMap", "a")))?.metadata.resourceVersion, "11", "later reads see the cluster");
    assert.deepEqual(asked.at(-1), [objectId(ref("ConfigMap", "a"))]);
  });

  it("makes no request when the apply returned every target", async () => {
    const observed = new Map([[objectId(ref("ConfigMap", "a")), configMap("a", "1")]]);
    const { fetch, asked } = recordingFetch(new Map());
    const live = await firstFromObserved(observed, fetch)([ref("ConfigMap", "a")]);
    assert.equal(live.size, 1);
    assert.deepEqual(asked, []);
  });
});

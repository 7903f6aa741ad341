// pruneObjects' handling of kinds whose recorded version is no longer served,
// against an in-memory client (the integration tests do the same against a
// real API server).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../../../src/api/types.js";
import { groupOf, managedLabels, objectId } from "../../../src/apply/objects.js";
import type { ApplyClient, KindInfo, ObjectRef } from "../../../src/apply/ports.js";
import { pruneObjects } from "../../../src/apply/prune.js";
import { KindNotFoundError } from "../../../src/kube/errors.js";

const stageSet = { name: "shop", namespace: "ns" };
const labels = managedLabels(stageSet, "app");

/** Objects by id (version-independent, as on a real server); `served` lists the apiVersions each kind is served in. */
class MemoryClient implements ApplyClient {
  readonly objects = new Map<string, KubeObject>();
  readonly deletedThrough: string[] = [];
  constructor(readonly served: Record<string, string[]>) {}

  #check(apiVersion: string, kind: string): void {
    if (!(this.served[kind] ?? []).includes(apiVersion)) throw new KindNotFoundError(apiVersion, kind);
  }
  async resourceFor(apiVersion: string, kind: string): Promise<KindInfo> {
    this.#check(apiVersion, kind);
    const group = groupOf(apiVersion);
    return { group, version: apiVersion.slice(group.length + 1), kind, resource: `${kind.toLowerCase()}s`, namespaced: true };
  }
  async servedVersions(group: string, kind: string): Promise<string[]> {
    return (this.served[kind] ?? []).filter((v) => groupOf(v) === group);
  }
  async get(ref: ObjectRef): Promise<KubeObject | undefined> {
    this.#check(ref.apiVersion, ref.kind);
    const obj = this.objects.get(objectId(ref));
    return obj && { ...obj, apiVersion: ref.apiVersion };
  }
  async list(): Promise<{ items: KubeObject[] }> {
    return { items: [] };
  }
  async listAll(): Promise<{ items: KubeObject[] }> {
    return { items: [] };
  }
  async apply(obj: KubeObject): Promise<KubeObject> {
    return obj;
  }
  async patch(): Promise<KubeObject> {
    throw new Error("not used");
  }
  async delete(ref: ObjectRef): Promise<boolean> {
    this.#check(ref.apiVersion, ref.kind);
    this.deletedThrough.push(ref.apiVersion);
    return this.objects.delete(objectId(ref));
  }
}

const gadget = (name: string): KubeObject => ({
  apiVersion: "example.com/v1alpha1",
  kind: "Gadget",
  metadata: { name, namespace: "ns", labels, uid: `uid-${name}` },
});
const ref = (name: string, kind = "Gadget"): ObjectRef => ({ apiVersion: "example.com/v1alpha1", kind, name, namespace: "ns" });

describe("pruneObjects with versions that are no longer served", () => {
  it("reads and deletes through a served version of the same group and kind", async () => {
    const client = new MemoryClient({ Gadget: ["example.com/v1", "example.com/v2"] });
    client.objects.set(objectId(ref("g-old")), gadget("g-old"));
    const result = await pruneObjects({ client, stageSet, stage: "app", candidates: [ref("g-old")] });
    assert.deepEqual(result.pruned, [{ ...ref("g-old"), apiVersion: "example.com/v1" }]);
    assert.deepEqual(result.dropped, []);
    assert.deepEqual(client.deletedThrough, ["example.com/v1"]);
    assert.equal(client.objects.size, 0);
  });

  it("drops an entry only when no version serves its kind, and says so naming the object", async () => {
    const client = new MemoryClient({});
    const result = await pruneObjects({ client, stageSet, stage: "app", candidates: [ref("g-old", "Gizmo")] });
    assert.deepEqual(result.pruned, []);
    assert.equal(result.dropped.length, 1);
    assert.deepEqual(result.dropped[0]!.ref, ref("g-old", "Gizmo"));
    assert.equal(result.dropped[0]!.reason, "kind-not-served");
    assert.match(result.dropped[0]!.message, /Gizmo\.example\.com ns\/g-old .*no version of kind Gizmo in group example\.com is served/);
  });

  it("still treats an object missing under a served version as gone", async () => {
    const client = new MemoryClient({ Gadget: ["example.com/v1alpha1"] });
    const result = await pruneObjects({ client, stageSet, stage: "app", candidates: [ref("never")] });
    assert.deepEqual(result, { pruned: [], kept: [], dropped: [] });
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject, StageInventory } from "../../../src/api/types.js";
import { applySetId, parseMemberKinds, parentAnnotations } from "../../../src/apply/applyset.js";
import {
  buildInventories,
  entriesOf,
  inventoryName,
  inventoryUpToDate,
  leftEntries,
  memberLabels,
  shardEntries,
  stageApplySetId,
  unionEntries,
} from "../../../src/apply/inventory.js";

const cm = (name: string, namespace = "shop"): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace } });
const owner = { name: "shop", namespace: "shop" };

describe("inventory entries", () => {
  it("records each applied object once, sorted by id", () => {
    const entries = entriesOf([
      cm("b"),
      { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "shop" } },
      cm("a"),
      cm("a"),
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } },
    ]);
    assert.deepEqual(entries, [
      { id: "_shop__Namespace", v: "v1" },
      { id: "shop_a__ConfigMap", v: "v1" },
      { id: "shop_b__ConfigMap", v: "v1" },
      { id: "shop_web_apps_Deployment", v: "apps/v1" },
    ]);
  });

  it("diffs old against new by id", () => {
    const old = [{ id: "s_a__ConfigMap", v: "v1" }, { id: "s_web_apps_Deployment", v: "apps/v1beta1" }];
    const next = [{ id: "s_web_apps_Deployment", v: "apps/v1" }];
    assert.deepEqual(leftEntries(old, next), [{ id: "s_a__ConfigMap", v: "v1" }]);
    assert.deepEqual(unionEntries(old, next), [{ id: "s_a__ConfigMap", v: "v1" }, { id: "s_web_apps_Deployment", v: "apps/v1" }]);
  });

  it("shards by the cap and always has shard 0", () => {
    const entries = entriesOf(["a", "b", "c", "d", "e"].map((n) => cm(n)));
    assert.deepEqual(shardEntries(entries, 2).map((s) => s.length), [2, 2, 1]);
    assert.deepEqual(shardEntries([], 2), [[]]);
    assert.throws(() => shardEntries(entries, 0), /inventory-shard-cap/);
  });
});

describe("StageInventory objects", () => {
  const entries = entriesOf([cm("a"), cm("b"), cm("c", "other"), { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "shop" } }]);

  it("follows the contract: name, labels, position, entries", () => {
    const [first, second, ...rest] = buildInventories({ stageSet: owner, stage: "app", position: 1, entries, mode: "entries", shardCap: 3 });
    assert.equal(rest.length, 0);
    assert.equal(first!.metadata.name, "shop-app-0");
    assert.equal(second!.metadata.name, inventoryName("shop", "app", 1));
    assert.deepEqual(second!.metadata.labels, { "stages.metio.wtf/stage-set": "shop", "stages.metio.wtf/stage": "app", "stages.metio.wtf/shard": "1" });
    assert.equal(first!.spec.stagePosition, 1);
    assert.deepEqual([...first!.spec.entries, ...second!.spec.entries], entries);
    assert.equal(first!.metadata.annotations, undefined);
    assert.deepEqual(memberLabels("entries", owner, "app"), {});
  });

  it("makes shard 0 the ApplySet parent in hybrid mode", () => {
    const [parent, other] = buildInventories({ stageSet: owner, stage: "app", position: 0, entries, mode: "hybrid", shardCap: 2 });
    const id = stageApplySetId(owner, "app");
    assert.match(id, /^applyset-[A-Za-z0-9_-]{43}-v1$/);
    assert.equal(parent!.metadata.labels!["applyset.kubernetes.io/id"], id);
    assert.deepEqual(parent!.metadata.annotations, {
      "applyset.kubernetes.io/tooling": "stageset-controller/v1",
      "applyset.kubernetes.io/contains-group-kinds": "ConfigMap,Deployment.apps",
      "applyset.kubernetes.io/additional-namespaces": "other",
      "stages.metio.wtf/applyset-member-kinds": "apps/v1:Deployment,v1:ConfigMap",
    });
    assert.equal(other!.metadata.annotations, undefined);
    assert.deepEqual(memberLabels("hybrid", owner, "app"), { "applyset.kubernetes.io/part-of": id });
  });

  it("stores no entries in applyset mode", () => {
    const shards = buildInventories({ stageSet: owner, stage: "app", position: 0, entries, mode: "applyset", shardCap: 2 });
    assert.equal(shards.length, 1);
    assert.deepEqual(shards[0]!.spec.entries, []);
    assert.equal(shards[0]!.metadata.annotations!["applyset.kubernetes.io/contains-group-kinds"], "ConfigMap,Deployment.apps");
  });

  it("derives the ApplySet id from the parent's name, namespace, kind and group", () => {
    const a = applySetId({ name: "shop-app-0", namespace: "shop", kind: "StageInventory", group: "stages.metio.wtf" });
    assert.equal(a, stageApplySetId(owner, "app"));
    assert.notEqual(a, stageApplySetId(owner, "infra"));
  });

  it("parses the member-kinds annotation back", () => {
    assert.deepEqual(parseMemberKinds(parentAnnotations(entries, "shop")["stages.metio.wtf/applyset-member-kinds"]), [
      { apiVersion: "apps/v1", kind: "Deployment" },
      { apiVersion: "v1", kind: "ConfigMap" },
    ]);
  });

  it("is up to date only when entries, position and contract keys all match", () => {
    const [desired] = buildInventories({ stageSet: owner, stage: "app", position: 0, entries, mode: "hybrid", shardCap: 10 });
    const live = structuredClone(desired!) as KubeObject;
    live.metadata.uid = "u";
    live.metadata.resourceVersion = "7";
    assert.ok(inventoryUpToDate(desired!, live));
    const fewer = structuredClone(live) as StageInventory;
    fewer.spec.entries.pop();
    assert.ok(!inventoryUpToDate(desired!, fewer));
    const [entriesMode] = buildInventories({ stageSet: owner, stage: "app", position: 0, entries, mode: "entries", shardCap: 10 });
    // Switching hybrid → entries must drop the ApplySet keys.
    assert.ok(!inventoryUpToDate(entriesMode!, live));
    assert.ok(!inventoryUpToDate(desired!, undefined));
  });
});

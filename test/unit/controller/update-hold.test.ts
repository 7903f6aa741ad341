import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StageSet } from "../../../src/api/types.js";
import { describeRevisions, isNewHold, newRevisions, pinnedStages, updateOverride, whenHeldShips } from "../../../src/controller/update-hold.js";

function stageSet(status: StageSet["status"] = {}, annotations: Record<string, string> = {}): StageSet {
  return {
    apiVersion: "stages.metio.wtf/v1",
    kind: "StageSet",
    metadata: { name: "web", namespace: "apps", annotations },
    spec: { stages: [{ name: "infra", sourceRef: { name: "infra" } }, { name: "app", sourceRef: { name: "app" } }] },
    status,
  };
}

const resolved = (infra: string, app: string) => [
  { key: "apps/infra", artifact: { url: "u", digest: "d", revision: infra } },
  { key: "apps/app", artifact: { url: "u", digest: "d", revision: app } },
];

const snapshot = (infra: string, app: string) => [
  { stage: "infra", url: "u", digest: "d1", revision: infra },
  { stage: "app", url: "u", digest: "d2", revision: app },
];

describe("newRevisions", () => {
  it("is empty when every stage is at its snapshot's revision", () => {
    const s = stageSet({ lastAppliedSnapshot: snapshot("i1", "a1") });
    assert.deepEqual(newRevisions(s, s.status, resolved("i1", "a1")), {});
  });

  it("names the revisions that differ from the snapshot", () => {
    const s = stageSet({ lastAppliedSnapshot: snapshot("i1", "a1") });
    assert.deepEqual(newRevisions(s, s.status, resolved("i1", "a2")), { "apps/app": "a2" });
  });

  it("treats a rollout already under way as approved: a window closing mid-rollout does not hold it (CONTRACT Decisions)", () => {
    const s = stageSet({ lastAppliedSnapshot: snapshot("i1", "a1"), lastAttemptedRevisions: { "apps/infra": "i1", "apps/app": "a2" } });
    assert.deepEqual(newRevisions(s, s.status, resolved("i1", "a2")), {}, "a2 started before the window closed");
    assert.deepEqual(newRevisions(s, s.status, resolved("i1", "a3")), { "apps/app": "a3" }, "a3 arrived after");
  });

  it("holds every stage of a first deployment", () => {
    const s = stageSet();
    assert.deepEqual(newRevisions(s, s.status, resolved("i1", "a1")), { "apps/infra": "i1", "apps/app": "a1" });
  });
});

describe("updateOverride", () => {
  it("honours each update-now value once", () => {
    assert.equal(updateOverride(stageSet()), undefined);
    assert.equal(updateOverride(stageSet({}, { "stages.metio.wtf/update-now": "t1" })), "t1");
    assert.equal(updateOverride(stageSet({ lastHandledUpdateOverride: "t1" }, { "stages.metio.wtf/update-now": "t1" })), undefined);
    assert.equal(updateOverride(stageSet({ lastHandledUpdateOverride: "t1" }, { "stages.metio.wtf/update-now": "t2" })), "t2");
  });
});

describe("pinnedStages", () => {
  it("re-applies stages with a snapshot, stopping before the first stage without one", () => {
    const s = stageSet();
    assert.deepEqual(pinnedStages(s, snapshot("i1", "a1")).map((p) => [p.index, p.snapshot.revision]), [[0, "i1"], [1, "a1"]]);
    assert.deepEqual(pinnedStages(s, [snapshot("i1", "a1")[1]!]), [], "stage 2 never runs before stage 1");
    assert.deepEqual(pinnedStages(s, [snapshot("i1", "a1")[0]!]).map((p) => p.index), [0]);
  });
});

describe("isNewHold", () => {
  it("is true only when the held set changes (one event and one count per held revision)", () => {
    assert.equal(isNewHold(undefined, { "apps/app": "a2" }), true);
    assert.equal(isNewHold({ revisions: { "apps/app": "a2" } }, { "apps/app": "a2" }), false);
    assert.equal(isNewHold({ revisions: { "apps/app": "a2" } }, { "apps/app": "a3" }), true);
    assert.equal(isNewHold({ revisions: { "apps/app": "a2" } }, { "apps/app": "a2", "apps/infra": "i2" }), true);
  });
});

it("describeRevisions names each source and revision", () => {
  assert.equal(describeRevisions({ "apps/app": "a2", "apps/infra": "i2" }), "source apps/app revision a2, source apps/infra revision i2");
});

describe("whenHeldShips", () => {
  const at = (iso: string) => Date.parse(iso);

  it("names no instant again when the holding Deny ends at the next opening (its end is already in heldBy)", () => {
    assert.equal(whenHeldShips({ nextOpensAt: at("2026-12-01T13:00:00Z"), holdEndsAt: at("2026-12-01T13:00:00Z") }), "it ships when that window ends");
  });

  it("gives the next opening when it comes after the Deny ends (an Allow window still closed then) or no Deny holds", () => {
    assert.equal(
      whenHeldShips({ nextOpensAt: at("2026-12-01T15:00:00Z"), holdEndsAt: at("2026-12-01T14:00:00Z") }),
      "it ships when the next window opens at 2026-12-01T15:00:00.000Z",
    );
    assert.equal(whenHeldShips({ nextOpensAt: at("2026-12-01T19:00:00Z") }), "it ships when the next window opens at 2026-12-01T19:00:00.000Z");
  });

  it("points at update-now when no window opens within the search horizon", () => {
    assert.match(whenHeldShips({}), /no window opens within the search horizon; ship it with stagesetctl reconcile --update-now/);
  });
});

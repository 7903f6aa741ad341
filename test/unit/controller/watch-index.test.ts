import assert from "node:assert/strict";
import { test } from "node:test";
import type { StageSet } from "../../../src/api/types.js";
import { dependencyKeysOf, keysForSourceEvent, sourceKeysOf } from "../../../src/controller/watch-index.js";
import { canonical } from "../../../src/controller/status-writer.js";

const stageSet: StageSet = {
  apiVersion: "stages.metio.wtf/v1",
  kind: "StageSet",
  metadata: { name: "app", namespace: "team" },
  spec: {
    dependsOn: [{ name: "base" }, { name: "shared", namespace: "platform" }],
    stages: [
      { name: "a", sourceRef: { name: "crds" } },
      { name: "b", sourceRef: { kind: "GitRepository", name: "repo", namespace: "flux-system" } },
      { name: "c", sourceRef: { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "web" }, actions: { pre: [{ name: "migrate", job: { sourceRef: { name: "jobs" } } }] } },
    ],
  },
};

test("a StageSet is indexed under every source its stages and actions read", () => {
  assert.deepEqual(sourceKeysOf(stageSet).sort(), [
    "jaas.metio.wtf/JsonnetSnippet/team/web",
    "source.toolkit.fluxcd.io/ExternalArtifact/team/crds",
    "source.toolkit.fluxcd.io/ExternalArtifact/team/jobs",
    "source.toolkit.fluxcd.io/GitRepository/flux-system/repo",
  ]);
});

test("an ExternalArtifact event is found under its own key and its producer's", () => {
  const keys = keysForSourceEvent({
    apiVersion: "source.toolkit.fluxcd.io/v1",
    kind: "ExternalArtifact",
    metadata: { name: "web-rendered", namespace: "team" },
    spec: { sourceRef: { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "web" } },
  });
  assert.deepEqual(keys, ["source.toolkit.fluxcd.io/ExternalArtifact/team/web-rendered", "jaas.metio.wtf/JsonnetSnippet/team/web"]);
  const referrers = new Set(sourceKeysOf(stageSet));
  assert.ok(keys.some((k) => referrers.has(k)), "the producer key matches the StageSet's index key");
});

test("dependencies default to the StageSet's namespace", () => {
  assert.deepEqual(dependencyKeysOf(stageSet), ["team/base", "platform/shared"]);
});

test("equal statuses compare equal regardless of key order and empty values", () => {
  assert.equal(canonical({ b: 1, a: { y: [], x: "v" }, c: undefined }), canonical({ a: { x: "v" }, b: 1 }));
  assert.notEqual(canonical({ a: 1 }), canonical({ a: 2 }));
});

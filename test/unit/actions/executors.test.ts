import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { actionLabels, labelValue } from "../../../src/actions/common.js";
import { executorFor, operationOf } from "../../../src/actions/executors.js";
import { httpExecutor } from "../../../src/actions/http.js";
import { jobExecutor, jobName } from "../../../src/actions/job.js";
import { mergePatchTypeFor } from "../../../src/actions/patch.js";
import { waitExecutor } from "../../../src/actions/wait.js";
import type { Action, StageSet } from "../../../src/api/types.js";
import { InvalidSpecError } from "../../../src/errors.js";

describe("executorFor", () => {
  it("picks the executor of the one operation an action sets", () => {
    assert.equal(executorFor({ name: "a", job: { sourceRef: { name: "s" } } }), jobExecutor);
    assert.equal(executorFor({ name: "a", wait: { duration: "1s" } }), waitExecutor);
    assert.equal(executorFor({ name: "a", http: { url: "https://example.com" } }), httpExecutor);
    assert.equal(operationOf({ name: "a", delete: { target: { apiVersion: "v1", kind: "Pod", name: "p" } } }), "delete");
  });

  it("throws InvalidSpecError for no operation and for several", () => {
    assert.throws(() => executorFor({ name: "empty" }), (err: unknown) => {
      assert.ok(err instanceof InvalidSpecError);
      assert.match(err.message, /^action "empty": an action performs exactly one operation \(job, http, wait, patch, delete, apply\); none is set$/);
      return true;
    });
    const both = { name: "both", wait: { duration: "1s" }, http: { url: "https://example.com" } } as Action;
    assert.throws(() => executorFor(both), /found http, wait$/);
  });
});

describe("job names and labels", () => {
  it("suffixes 8 hex of the revision's hash and stays within 63 characters", () => {
    assert.match(jobName("migrate", "main@sha1:abc"), /^migrate-[0-9a-f]{8}$/);
    assert.notEqual(jobName("migrate", "r1"), jobName("migrate", "r2"));
    assert.equal(jobName("migrate", "r1"), jobName("migrate", "r1"));
    const long = jobName(`${"a".repeat(53)}-${"b".repeat(20)}`, "r1");
    assert.equal(long.length, 62);
    assert.match(long, /^a{53}-[0-9a-f]{8}$/, "a trailing dash of the cut name is dropped");
    assert.ok(jobName("x".repeat(100), "r1").length <= 63);
  });

  it("labels carry the StageSet, stage, list and action; a name that is no label value is hashed", () => {
    const stageSet = { metadata: { name: "web", namespace: "shop" } } as StageSet;
    const labels = actionLabels({ name: "run migrations!" }, { stageSet, stage: { name: "db", sourceRef: { name: "s" } }, list: "pre" });
    assert.deepEqual(Object.keys(labels).sort(), [
      "stages.metio.wtf/action",
      "stages.metio.wtf/action-list",
      "stages.metio.wtf/name",
      "stages.metio.wtf/namespace",
      "stages.metio.wtf/stage",
    ]);
    assert.match(labels["stages.metio.wtf/action"]!, /^h-[0-9a-f]{12}$/);
    assert.equal(labelValue("migrate"), "migrate");
  });
});

describe("merge patch type", () => {
  it("is strategic for built-in groups and JSON merge for custom resources", () => {
    assert.equal(mergePatchTypeFor("v1"), "strategic");
    assert.equal(mergePatchTypeFor("apps/v1"), "strategic");
    assert.equal(mergePatchTypeFor("networking.k8s.io/v1"), "strategic");
    assert.equal(mergePatchTypeFor("gateway.networking.k8s.io/v1"), "merge");
    assert.equal(mergePatchTypeFor("stages.metio.wtf/v1"), "merge");
  });
});

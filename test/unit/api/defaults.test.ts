import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { withDefaults } from "../../../src/api/defaults.js";
import type { StageSetSpec } from "../../../src/api/types.js";
import { fullStageSet } from "./fixtures.js";

describe("withDefaults", () => {
  test("fills the contract's defaults into a minimal spec", () => {
    const spec: StageSetSpec = { stages: [{ name: "app", sourceRef: { name: "my-app" } }] };
    assert.deepEqual(withDefaults(spec), {
      timeout: "15m",
      suspend: false,
      rollbackOnFailure: false,
      windowScope: "Updates",
      stages: [{ name: "app", sourceRef: { kind: "ExternalArtifact", name: "my-app" }, path: "./", prune: true }],
    });
  });

  test("does not touch its input", () => {
    const spec: StageSetSpec = { stages: [{ name: "app", sourceRef: { name: "my-app" } }] };
    const before = structuredClone(spec);
    withDefaults(spec);
    assert.deepEqual(spec, before);
  });

  test("defaults nested parts only where their parent is present", () => {
    const spec = withDefaults(fullStageSet().spec);
    assert.equal(spec.kubeConfig?.secretRef.key, "value");
    assert.equal(spec.updateWindows?.[0]?.timeZone, "Europe/Berlin");
    assert.equal(spec.updateWindows?.[1]?.timeZone, "UTC");
    const [infrastructure, application] = spec.stages;
    assert.equal(infrastructure?.conflictPolicy?.default, "Fail");
    assert.equal(application?.conflictPolicy, undefined);
    assert.equal(application?.sourceRef.kind, "GitRepository");
    assert.equal(application?.path, "./overlays/production");
    assert.deepEqual(application?.postBuild?.substituteFrom, [
      { kind: "ConfigMap", name: "cluster-vars", optional: false },
      { kind: "Secret", name: "cluster-secrets", optional: true },
    ]);
    const pre = application?.actions?.pre ?? [];
    assert.deepEqual(pre[0], {
      name: "db-migrate",
      timeout: "5m",
      retries: 0,
      job: { sourceRef: { kind: "ExternalArtifact", name: "payments-migrations" }, path: "./" },
    });
    assert.equal(pre[1]?.apply?.wait, true);
    const post = application?.actions?.post ?? [];
    assert.equal(post[0]?.http?.method, "POST");
    assert.equal(post[1]?.timeout, "10m");
    assert.equal(post[1]?.retries, 2);
    assert.equal(post[2]?.patch?.type, "merge");
    assert.equal(application?.actions?.onFailure?.[0]?.http?.method, "PUT");
    assert.equal(spec.migrations?.[0]?.actions[0]?.timeout, "5m");
  });

  test("keeps explicit false and empty values", () => {
    const spec = withDefaults({
      suspend: true,
      stages: [{ name: "app", sourceRef: { name: "a" }, prune: false, path: "" }],
    });
    assert.equal(spec.suspend, true);
    assert.equal(spec.stages[0]?.prune, false);
    assert.equal(spec.stages[0]?.path, "");
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../../../src/api/types.js";
import { findDrift, needsApply } from "../../../src/apply/drift.js";
import {
  foldStringData,
  LAST_APPLIED_ANNOTATION,
  takeoverPatch,
  unionFields,
  unsetOwnedFields,
  withoutUnsetOwnedFields,
  type FieldsV1,
} from "../../../src/apply/managed-fields.js";

// fieldsV1 as the API server records them for our manager (copied from real answers' shapes).
function withOwnership(obj: KubeObject, fields: FieldsV1, manager = "stageset-controller", operation = "Apply"): KubeObject {
  return {
    ...obj,
    metadata: {
      ...obj.metadata,
      managedFields: [{ manager, operation, apiVersion: obj.apiVersion, fieldsType: "FieldsV1", fieldsV1: fields }],
    } as KubeObject["metadata"],
  };
}

const configMapFields: FieldsV1 = {
  "f:data": { "f:keep": {}, "f:drop": {} },
  "f:metadata": { "f:labels": { "f:tier": {}, "f:app": {} }, "f:annotations": { "f:note": {} } },
};

function liveConfigMap(): KubeObject {
  return withOwnership(
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "only-removal", namespace: "demo", labels: { tier: "web", app: "x" }, annotations: { note: "n" }, resourceVersion: "7", uid: "u1" },
      data: { keep: "1", drop: "2" },
    },
    configMapFields,
  );
}

function desiredConfigMap(data: Record<string, string>, labels: Record<string, string>, annotations?: Record<string, string>): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "only-removal", namespace: "demo", labels, ...(annotations ? { annotations } : {}) }, data };
}

const deploymentFields: FieldsV1 = {
  "f:spec": {
    "f:replicas": {},
    "f:template": {
      "f:spec": {
        "f:containers": {
          'k:{"name":"worker"}': {
            ".": {},
            "f:name": {},
            "f:image": {},
            "f:env": { 'k:{"name":"MODE"}': { ".": {}, "f:name": {}, "f:value": {} }, 'k:{"name":"LEGACY_MODE"}': { ".": {}, "f:name": {}, "f:value": {} } },
            "f:ports": { 'k:{"containerPort":53,"protocol":"UDP"}': { ".": {}, "f:containerPort": {}, "f:protocol": {} }, 'k:{"containerPort":8080,"protocol":"TCP"}': { ".": {}, "f:containerPort": {} } },
          },
          'k:{"name":"sidecar"}': { ".": {}, "f:name": {}, "f:image": {} },
        },
        "f:tolerations": {},
        "f:volumes": { 'k:{"name":"cache"}': { ".": {}, "f:name": {}, "f:emptyDir": {} } },
      },
    },
  },
  "f:metadata": { "f:finalizers": { 'v:"example.com/keep"': {} } },
};

function desiredDeployment(edit: (spec: Record<string, unknown>) => void = () => {}): KubeObject {
  const podSpec: Record<string, unknown> = {
    containers: [
      {
        name: "worker",
        image: "w:1",
        env: [
          { name: "MODE", value: "a" },
          { name: "LEGACY_MODE", value: "1" },
        ],
        ports: [{ containerPort: 53, protocol: "UDP" }, { containerPort: 8080 }],
      },
      { name: "sidecar", image: "s:1" },
    ],
    tolerations: [{ key: "a", operator: "Exists" }],
    volumes: [{ name: "cache", emptyDir: {} }],
  };
  edit(podSpec);
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "worker", namespace: "demo", finalizers: ["example.com/keep"] },
    spec: { replicas: 2, template: { spec: podSpec } },
  };
}

describe("fields our manager owns but the desired object no longer sets", () => {
  it("finds nothing when every owned field is still set", () => {
    assert.deepEqual(unsetOwnedFields(desiredConfigMap({ keep: "1", drop: "2" }, { tier: "web", app: "x" }, { note: "n" }), liveConfigMap(), 10), []);
    assert.deepEqual(unsetOwnedFields(desiredDeployment(), withOwnership(desiredDeployment(), deploymentFields), 10), []);
  });

  it("finds a removed data key, label and annotation", () => {
    const missing = unsetOwnedFields(desiredConfigMap({ keep: "1" }, { app: "x" }), liveConfigMap(), 10);
    assert.deepEqual(missing.sort(), ["data.drop", "metadata.annotations", "metadata.labels.tier"]);
  });

  it("finds a removed env var, container, volume, port (by port and protocol) and finalizer", () => {
    const live = withOwnership(desiredDeployment(), deploymentFields);
    const cases: [string, (spec: Record<string, unknown>) => void, RegExp][] = [
      ["env var", (s) => ((s.containers as { env: unknown[] }[])[0]!.env = [{ name: "MODE", value: "a" }]), /env\[name=LEGACY_MODE\]/],
      ["container", (s) => ((s.containers as unknown[]).length = 1), /containers\[name=sidecar\]/],
      ["volume", (s) => delete s.volumes, /volumes/],
      ["toleration list", (s) => delete s.tolerations, /tolerations/],
      ["UDP port", (s) => ((s.containers as { ports: unknown[] }[])[0]!.ports = [{ containerPort: 53 }, { containerPort: 8080 }]), /containerPort=53,protocol=UDP/],
    ];
    for (const [what, edit, expected] of cases) {
      const missing = unsetOwnedFields(desiredDeployment(edit), live, 5);
      assert.ok(missing.some((p) => expected.test(p)), `${what}: ${JSON.stringify(missing)}`);
    }
    const noFinalizer = desiredDeployment();
    noFinalizer.metadata.finalizers = [];
    assert.deepEqual(unsetOwnedFields(noFinalizer, live, 5), ['metadata.finalizers["example.com/keep"]']);
  });

  it("treats a field set to null as removed", () => {
    const desired = desiredDeployment();
    (desired.spec as Record<string, unknown>).replicas = null;
    assert.deepEqual(unsetOwnedFields(desired, withOwnership(desiredDeployment(), deploymentFields), 5), ["spec.replicas"]);
    // Once removed, the server still records ownership of the null: not drift again.
    const removed = withOwnership(desiredDeployment(), deploymentFields);
    delete (removed.spec as Record<string, unknown>).replicas;
    assert.deepEqual(unsetOwnedFields(desired, removed, 5), []);
  });

  it("matches a port keyed with the server's default protocol when the manifest leaves it out", () => {
    const live = withOwnership(desiredDeployment(), deploymentFields);
    assert.deepEqual(unsetOwnedFields(desiredDeployment(), live, 5), []);
  });

  it("ignores other managers and Update operations", () => {
    const live = withOwnership(desiredConfigMap({ keep: "1", drop: "2", hpa: "3" }, { tier: "web" }), { "f:data": { "f:hpa": {} } }, "kube-controller-manager", "Update");
    assert.deepEqual(unsetOwnedFields(desiredConfigMap({ keep: "1" }, {}), live, 5), []);
  });

  it("makes findDrift and needsApply report a removal-only change", () => {
    const desired = desiredConfigMap({ keep: "1" }, { tier: "web", app: "x" }, { note: "n" });
    assert.equal(needsApply(desired, liveConfigMap()), true);
    assert.deepEqual(findDrift(desired, liveConfigMap(), 5), ["-data.drop"]);
  });

  it("folds Secret stringData into data, so removing a stringData key is seen as a data removal", () => {
    const live = withOwnership(
      { apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "demo" }, data: { a: "YQ==", b: "Yg==" } },
      { "f:data": { "f:a": {}, "f:b": {} } },
    );
    const desired: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "demo" }, stringData: { a: "a" } };
    assert.deepEqual(foldStringData(desired), { apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "demo" }, data: { a: "YQ==" } });
    assert.deepEqual(findDrift(desired, live, 5), ["-data.b"]);
  });
});

describe("withoutUnsetOwnedFields (client-side diff preview)", () => {
  it("drops the owned fields the desired object no longer sets and keeps others' fields", () => {
    const live = liveConfigMap();
    live.metadata.labels = { ...live.metadata.labels, "added-by-someone": "y" };
    const preview = withoutUnsetOwnedFields(live, desiredConfigMap({ keep: "1" }, { app: "x" }, { note: "n" }));
    assert.deepEqual(preview.data, { keep: "1" });
    assert.deepEqual(preview.metadata.labels, { app: "x", "added-by-someone": "y" });
    assert.deepEqual(live.data, { keep: "1", drop: "2" }, "the live object is not modified");
  });

  it("drops a removed list item by key", () => {
    const live = withOwnership(desiredDeployment(), deploymentFields);
    const desired = desiredDeployment((s) => ((s.containers as { env: unknown[] }[])[0]!.env = [{ name: "MODE", value: "a" }]));
    const preview = withoutUnsetOwnedFields(live, desired);
    const env = (preview.spec as { template: { spec: { containers: { env: { name: string }[] }[] } } }).template.spec.containers[0]!.env;
    assert.deepEqual(env.map((e) => e.name), ["MODE"]);
  });
});

describe("taking an object over from client-side kubectl apply", () => {
  const legacy: KubeObject = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "settings",
      namespace: "demo",
      resourceVersion: "42",
      annotations: { [LAST_APPLIED_ANNOTATION]: "{}", other: "x" },
      managedFields: [
        { manager: "kubectl-client-side-apply", operation: "Update", apiVersion: "v1", fieldsType: "FieldsV1", fieldsV1: { "f:data": { "f:key": {}, "f:legacy": {} } } },
        { manager: "stageset-controller", operation: "Apply", apiVersion: "v1", fieldsType: "FieldsV1", fieldsV1: { "f:data": { "f:key": {} }, "f:metadata": { "f:labels": {} } } },
        { manager: "someone-else", operation: "Update", apiVersion: "v1", fieldsType: "FieldsV1", fieldsV1: { "f:metadata": { "f:annotations": { "f:other": {} } } } },
      ],
    } as KubeObject["metadata"],
    data: { key: "value", legacy: "unused" },
  };

  it("merges the client-side managers' fields into ours, keeps other managers, drops the annotation, guards on resourceVersion", () => {
    const patch = takeoverPatch(legacy) as { metadata: { managedFields: { manager: string; operation: string; fieldsV1: FieldsV1 }[]; annotations: Record<string, null>; resourceVersion: string } };
    assert.ok(patch);
    assert.deepEqual(patch.metadata.managedFields.map((e) => [e.manager, e.operation]), [
      ["someone-else", "Update"],
      ["stageset-controller", "Apply"],
    ]);
    assert.deepEqual(patch.metadata.managedFields[1]!.fieldsV1, { "f:data": { "f:key": {}, "f:legacy": {} }, "f:metadata": { "f:labels": {} } });
    assert.deepEqual(patch.metadata.annotations, { [LAST_APPLIED_ANNOTATION]: null });
    assert.equal(patch.metadata.resourceVersion, "42");
  });

  it("is needed (drift) for such an object, and not for one we own alone", () => {
    const desired: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "demo" }, data: { key: "value", legacy: "unused" } };
    assert.match(findDrift(desired, legacy, 5).join(), /client-side kubectl apply/);
    const ours = structuredClone(legacy);
    ours.metadata.annotations = {};
    (ours.metadata as { managedFields: unknown[] }).managedFields = [];
    assert.equal(takeoverPatch(ours), undefined);
    assert.equal(needsApply(desired, ours), false);
  });

  it("unions field sets deeply", () => {
    assert.deepEqual(unionFields({ "f:a": { "f:b": {} } }, { "f:a": { "f:c": {} }, "f:d": {} }), { "f:a": { "f:b": {}, "f:c": {} }, "f:d": {} });
  });
});

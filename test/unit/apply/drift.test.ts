import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../../../src/api/types.js";
import { AppliedStateMemo, digestOf, findDrift, holdsDesired, needsApply } from "../../../src/apply/drift.js";
import { quantityValue, sameQuantity } from "../../../src/apply/quantity.js";

interface Shape {
  spec: {
    replicas: number;
    ports: { targetPort: number | string }[];
    template: { spec: { containers: { image: string; env: { value: string }[]; resources: { limits: Record<string, string> } }[] } };
  };
}
/** Typed access to the fields the tests edit. */
const shape = (obj: KubeObject): Shape => obj as unknown as Shape;

const labels = { app: "web", "stages.metio.wtf/name": "shop", "stages.metio.wtf/namespace": "shop", "stages.metio.wtf/stage": "app" };

function desiredDeployment(): KubeObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "shop", labels, creationTimestamp: null as unknown as string },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" }, creationTimestamp: null },
        spec: {
          containers: [
            {
              name: "web",
              image: "nginx:1.27",
              ports: [{ containerPort: 8080 }],
              env: [{ name: "MODE", value: "prod" }],
              resources: { limits: { cpu: "0.5", memory: "256Mi" }, requests: { cpu: 0.1, memory: "134217728" } },
            },
          ],
          volumes: [],
        },
      },
    },
  };
}

// What the API server returns for it: defaults, canonical quantities, status, metadata it owns.
function liveDeployment(): KubeObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: "web",
      namespace: "shop",
      uid: "5c0d6a56-1111-4f3c-9d43-5f8a2b1d0e11",
      resourceVersion: "4711",
      generation: 1,
      creationTimestamp: "2025-01-01T00:00:00Z",
      labels,
      annotations: { "deployment.kubernetes.io/revision": "1" },
      managedFields: [{ manager: "stageset-controller", operation: "Apply" }],
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: "web" } },
      progressDeadlineSeconds: 600,
      revisionHistoryLimit: 10,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: {
          containers: [
            {
              name: "web",
              image: "nginx:1.27",
              imagePullPolicy: "IfNotPresent",
              ports: [{ containerPort: 8080, protocol: "TCP" }],
              env: [{ name: "MODE", value: "prod" }, { name: "INJECTED_BY_WEBHOOK", value: "1" }],
              resources: { limits: { cpu: "500m", memory: "256Mi" }, requests: { cpu: "100m", memory: "128Mi" } },
              terminationMessagePath: "/dev/termination-log",
            },
            { name: "istio-proxy", image: "proxy:1" },
          ],
          restartPolicy: "Always",
          dnsPolicy: "ClusterFirst",
        },
      },
    },
    status: { replicas: 2, readyReplicas: 2 },
  };
}

describe("needsApply", () => {
  it("is false when the live Deployment holds everything we set, in the server's spelling", () => {
    assert.deepEqual(findDrift(desiredDeployment(), liveDeployment(), 5), []);
  });

  it("finds a changed image, replica count, env value or label", () => {
    const live = shape(liveDeployment());
    live.spec.template.spec.containers[0]!.image = "nginx:1.26";
    assert.deepEqual(findDrift(desiredDeployment(), live as unknown as KubeObject), ["spec.template.spec.containers[name=web].image"]);

    const scaled = shape(liveDeployment());
    scaled.spec.replicas = 5;
    assert.ok(needsApply(desiredDeployment(), scaled as unknown as KubeObject));

    const env = shape(liveDeployment());
    env.spec.template.spec.containers[0]!.env[0]!.value = "debug";
    assert.ok(needsApply(desiredDeployment(), env as unknown as KubeObject));

    const relabelled = liveDeployment();
    relabelled.metadata.labels = { ...labels, "stages.metio.wtf/stage": "other" };
    assert.deepEqual(findDrift(desiredDeployment(), relabelled), ["metadata.labels.stages.metio.wtf/stage"]);
  });

  it("finds a removed container, a changed quantity and a missing object", () => {
    const live = shape(liveDeployment());
    live.spec.template.spec.containers = live.spec.template.spec.containers.slice(1);
    assert.ok(needsApply(desiredDeployment(), live as unknown as KubeObject));
    const cpu = shape(liveDeployment());
    cpu.spec.template.spec.containers[0]!.resources.limits.cpu = "600m";
    assert.deepEqual(findDrift(desiredDeployment(), cpu as unknown as KubeObject), ["spec.template.spec.containers[name=web].resources.limits.cpu"]);
    assert.deepEqual(findDrift(desiredDeployment(), undefined), ["<missing>"]);
  });

  it("compares a Service's int-or-string ports and tolerates the allocated clusterIP", () => {
    const desired: KubeObject = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web", namespace: "shop" },
      spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "8080" }] },
    };
    const live: KubeObject = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web", namespace: "shop", uid: "u", resourceVersion: "1" },
      spec: {
        clusterIP: "10.0.0.12",
        clusterIPs: ["10.0.0.12"],
        type: "ClusterIP",
        sessionAffinity: "None",
        selector: { app: "web" },
        ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: 8080 }],
      },
    };
    assert.equal(needsApply(desired, live), false);
    shape(live).spec.ports[0]!.targetPort = 9090;
    assert.equal(needsApply(desired, live), true);
  });

  it("compares ConfigMap data exactly, including an added key being irrelevant and a changed one not", () => {
    const desired: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "s" }, data: { limit: "1k" } };
    const live = { ...desired, metadata: { ...desired.metadata, uid: "u" }, data: { limit: "1k", other: "x" } };
    assert.equal(needsApply(desired, live), false);
    // Not a quantity field: "1000" is a different value.
    assert.equal(needsApply(desired, { ...live, data: { limit: "1000" } }), true);
  });

  it("treats empty lists and maps like missing ones, and null as no opinion", () => {
    const desired: KubeObject = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c", namespace: "s", annotations: {} },
      data: {},
      binaryData: null,
    };
    assert.equal(needsApply(desired, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "s" } }), false);
  });

  it("compares a Secret's stringData against the stored data", () => {
    const desired: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "n" }, stringData: { password: "hunter2" } };
    const live: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "n" }, type: "Opaque", data: { password: Buffer.from("hunter2").toString("base64") } };
    assert.equal(needsApply(desired, live), false);
    assert.equal(needsApply(desired, { ...live, data: { password: Buffer.from("other").toString("base64") } }), true);
  });

  it("ignores status and server-owned metadata in the desired object", () => {
    const desired = desiredDeployment();
    desired.status = { replicas: 9 };
    desired.metadata.resourceVersion = "1";
    assert.equal(needsApply(desired, liveDeployment()), false);
  });

  it("requires desired finalizers to be present, in any order", () => {
    const desired: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", finalizers: ["a/b"] } };
    assert.equal(needsApply(desired, { ...desired, metadata: { name: "c", finalizers: ["x/y", "a/b"] } }), false);
    assert.equal(needsApply(desired, { ...desired, metadata: { name: "c" } }), true);
  });
});

describe("holdsDesired (the check after our own apply)", () => {
  it("accepts an answer that holds what was sent in the server's spelling, with its defaults and status", () => {
    assert.equal(holdsDesired(desiredDeployment(), liveDeployment()), true);
  });

  it("refuses an answer that spells a sent field differently, as needsApply does", () => {
    const live = shape(liveDeployment());
    live.spec.template.spec.containers[0]!.env[0]!.value = "PROD";
    assert.equal(holdsDesired(desiredDeployment(), live as unknown as KubeObject), false);
    assert.equal(needsApply(desiredDeployment(), live as unknown as KubeObject), true);
    const unlabelled = liveDeployment();
    unlabelled.metadata.labels = { app: "web" };
    assert.equal(holdsDesired(desiredDeployment(), unlabelled), false);
  });

  it("does not read managedFields: a field our manager owns but no longer sends is needsApply's to find", () => {
    const desired: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "shop" }, data: { kept: "1" } };
    const live: KubeObject = {
      ...desired,
      metadata: {
        name: "c",
        namespace: "shop",
        uid: "u1",
        resourceVersion: "7",
        managedFields: [{ manager: "stageset-controller", operation: "Apply", fieldsType: "FieldsV1", fieldsV1: { "f:data": { "f:kept": {}, "f:gone": {} } } }],
      },
      data: { kept: "1", gone: "2" },
    };
    assert.deepEqual(findDrift(desired, live, 5), ["-data.gone"]);
    assert.equal(holdsDesired(desired, live), true);
  });
});

describe("quantities", () => {
  it("parses the suffixes the API server uses", () => {
    assert.equal(quantityValue("500m"), 0.5);
    assert.equal(quantityValue("1Gi"), 2 ** 30);
    assert.equal(quantityValue("1e3"), 1000);
    assert.equal(quantityValue("1E"), 1e18);
    assert.equal(quantityValue("2"), 2);
    assert.equal(quantityValue("abc"), undefined);
    assert.ok(sameQuantity("0.5", "500m"));
    assert.ok(sameQuantity("128Mi", "134217728"));
    assert.ok(sameQuantity(1, "1000m"));
    assert.ok(!sameQuantity("1Gi", "1G"));
  });
});

describe("AppliedStateMemo", () => {
  it("settles an object until its resourceVersion or the desired state changes", () => {
    const memo = new AppliedStateMemo();
    const desired = desiredDeployment();
    const live = liveDeployment();
    assert.equal(memo.isSettled(live, desired), false);
    memo.remember(live, desired);
    assert.equal(memo.isSettled(live, desired), true);
    assert.equal(memo.isSettled({ ...live, metadata: { ...live.metadata, resourceVersion: "4712" } }, desired), false);
    const changed = desiredDeployment();
    shape(changed).spec.replicas = 3;
    assert.equal(memo.isSettled(live, changed), false);
  });

  it("stays within its capacity", () => {
    const memo = new AppliedStateMemo(2);
    for (const uid of ["a", "b", "c"]) memo.remember({ apiVersion: "v1", kind: "ConfigMap", metadata: { uid, resourceVersion: "1" } }, desiredDeployment());
    assert.equal(memo.size, 2);
  });

  it("digests independently of key order", () => {
    assert.equal(digestOf({ a: 1, b: [1, { c: 2, d: 3 }] }), digestOf({ b: [1, { d: 3, c: 2 }], a: 1 }));
    assert.notEqual(digestOf({ a: [1, 2] }), digestOf({ a: [2, 1] }));
  });
});

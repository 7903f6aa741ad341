import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../../../src/api/types.js";
import { InvalidManifestError } from "../../../src/apply/errors.js";
import {
  assertNoDuplicates,
  describeObject,
  managedLabels,
  objectId,
  parseObjectId,
  placeObject,
  refFromId,
  sortForApply,
  sortForDelete,
  withLabels,
} from "../../../src/apply/objects.js";

const obj = (apiVersion: string, kind: string, name: string, namespace?: string): KubeObject => ({
  apiVersion,
  kind,
  metadata: namespace ? { name, namespace } : { name },
});

describe("objectId", () => {
  it("is namespace_name_group_kind with empty parts for core and cluster scope", () => {
    assert.equal(objectId(obj("apps/v1", "Deployment", "web", "payments")), "payments_web_apps_Deployment");
    assert.equal(objectId(obj("v1", "ConfigMap", "cfg", "payments")), "payments_cfg__ConfigMap");
    assert.equal(objectId(obj("v1", "Namespace", "payments")), "_payments__Namespace");
    assert.equal(objectId({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: "r" }), "_r_rbac.authorization.k8s.io_ClusterRole");
  });

  it("parses back into its parts and into a reference", () => {
    assert.deepEqual(parseObjectId("payments_web_apps_Deployment"), { namespace: "payments", name: "web", group: "apps", kind: "Deployment" });
    assert.deepEqual(parseObjectId("_payments__Namespace"), { namespace: "", name: "payments", group: "", kind: "Namespace" });
    assert.deepEqual(refFromId("payments_web_apps_Deployment", "apps/v1"), { apiVersion: "apps/v1", kind: "Deployment", name: "web", namespace: "payments" });
    assert.deepEqual(refFromId("_payments__Namespace", "v1"), { apiVersion: "v1", kind: "Namespace", name: "payments" });
  });

  it("rejects a malformed id", () => {
    assert.throws(() => parseObjectId("a_b_c"), /namespace_name_group_kind/);
    assert.throws(() => parseObjectId("ns__apps_Deployment"), InvalidManifestError);
  });
});

describe("placeObject", () => {
  it("puts a namespaced object without a namespace into the StageSet's", () => {
    const placed = placeObject(obj("v1", "ConfigMap", "cfg"), true, "payments", "app");
    assert.equal(placed.metadata.namespace, "payments");
    assert.equal(placeObject(obj("v1", "ConfigMap", "cfg", "other"), true, "payments", "app").metadata.namespace, "other");
  });

  it("refuses a cluster-scoped object that names a namespace, naming it", () => {
    assert.throws(
      () => placeObject(obj("rbac.authorization.k8s.io/v1", "ClusterRole", "reader", "payments"), false, "payments", "infra"),
      (err: Error) =>
        err instanceof InvalidManifestError && /stage "infra"/.test(err.message) && /ClusterRole reader/.test(err.message) && /cluster-scoped/.test(err.message),
    );
  });
});

describe("labels", () => {
  it("stamps the managed-object labels over the object's own", () => {
    const labelled = withLabels(
      { ...obj("v1", "ConfigMap", "cfg"), metadata: { name: "cfg", labels: { app: "web", "stages.metio.wtf/stage": "forged" } } },
      managedLabels({ name: "payments", namespace: "team" }, "app"),
    );
    assert.deepEqual(labelled.metadata.labels, {
      app: "web",
      "stages.metio.wtf/name": "payments",
      "stages.metio.wtf/namespace": "team",
      "stages.metio.wtf/stage": "app",
    });
  });
});

describe("duplicates", () => {
  it("names both copies of an object rendered twice", () => {
    assert.throws(
      () => assertNoDuplicates([obj("apps/v1", "Deployment", "web", "a"), obj("apps/v1beta1", "Deployment", "web", "a")], "app"),
      (err: Error) => /Deployment a\/web \(apps\/v1\)/.test(err.message) && /\(apps\/v1beta1\)/.test(err.message),
    );
    assert.doesNotThrow(() => assertNoDuplicates([obj("v1", "ConfigMap", "web", "a"), obj("v1", "ConfigMap", "web", "b")], "app"));
  });
});

describe("ordering", () => {
  const rendered = [
    obj("apps/v1", "Deployment", "web", "a"),
    obj("example.com/v1", "Widget", "w", "a"),
    obj("v1", "Namespace", "a"),
    obj("v1", "Service", "web", "a"),
    obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
    obj("v1", "ConfigMap", "cfg", "a"),
    obj("apps/v1", "Deployment", "api", "a"),
  ];

  it("applies CRDs, Namespaces, then the rest, keeping rendered order within a kind", () => {
    assert.deepEqual(
      sortForApply(rendered).map((o) => describeObject(o)),
      [
        "CustomResourceDefinition widgets.example.com",
        "Namespace a",
        "ConfigMap a/cfg",
        "Service a/web",
        "Deployment a/web",
        "Widget.example.com a/w",
        "Deployment a/api",
      ],
    );
  });

  it("deletes custom resources and workloads first, CRDs next, Namespaces last", () => {
    const order = sortForDelete(rendered).map((o) => o.kind);
    assert.deepEqual(order.slice(-2), ["CustomResourceDefinition", "Namespace"]);
    assert.ok(order.indexOf("Widget") < order.indexOf("CustomResourceDefinition"));
    assert.ok(order.indexOf("Deployment") < order.indexOf("ConfigMap"));
  });
});

// The discovery cache against a scripted transport: what it remembers, what
// makes it forget, and which 404s mean "this path is not served".
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KIND_NOT_SERVED_REQUEUE_MS } from "../../../src/errors.js";
import { crdGroupOf, Discovery, isUnservedPath } from "../../../src/kube/discovery.js";
import { KindNotFoundError, KubeApiError } from "../../../src/kube/errors.js";
import type { RequestSpec } from "../../../src/kube/transport.js";

/** Answers discovery paths from `served` (path → body); anything else is a plain-text 404. */
class ScriptedTransport {
  readonly served = new Map<string, unknown>();
  readonly requests: string[] = [];
  /** When set, a request waits for it before answering (to interleave a forget). */
  gate: Promise<void> | undefined;

  async json<T>(spec: RequestSpec): Promise<T> {
    this.requests.push(spec.path);
    const body = this.served.get(spec.path);
    if (this.gate) await this.gate;
    if (body === undefined) {
      throw new KubeApiError({ status: 404, reason: "NotFound", serverMessage: "404 page not found\n", operation: spec.operation });
    }
    return structuredClone(body) as T;
  }
}

const widgets = (namespaced = true) => ({
  resources: [
    { name: "widgets", kind: "Widget", namespaced, verbs: ["get", "list"] },
    { name: "widgets/status", kind: "Widget", namespaced, verbs: ["get"] },
  ],
});

describe("Discovery", () => {
  it("answers a known kind from the cache and asks again for a missing one", async () => {
    const t = new ScriptedTransport();
    const d = new Discovery(t);
    await assert.rejects(d.resourceFor("example.com/v1", "Widget"), (err: unknown) => {
      assert.ok(err instanceof KindNotFoundError);
      assert.equal(err.requeueAfterMs, KIND_NOT_SERVED_REQUEUE_MS, "a kind not served yet ends a run with a short requeue");
      return true;
    });
    t.served.set("/apis/example.com/v1", widgets());
    const info = await d.resourceFor("example.com/v1", "Widget");
    assert.deepEqual(info, { group: "example.com", version: "v1", kind: "Widget", resource: "widgets", namespaced: true, verbs: ["get", "list"] });
    await d.resourceFor("example.com/v1", "Widget");
    assert.equal(t.requests.length, 2, "a miss is not cached, a hit is");
  });

  it("forgets a group version or a whole group, and re-discovers on the next use", async () => {
    const t = new ScriptedTransport();
    t.served.set("/apis/example.com/v1", widgets());
    t.served.set("/apis/example.com/v1beta1", widgets());
    t.served.set("/apis/apps/v1", { resources: [{ name: "deployments", kind: "Deployment", namespaced: true }] });
    const d = new Discovery(t);
    for (const v of ["example.com/v1", "example.com/v1beta1", "apps/v1"]) await d.resourceFor(v, v.startsWith("apps") ? "Deployment" : "Widget");
    assert.equal(t.requests.length, 3);

    // The CRD was deleted: its group is forgotten, the kind is no longer served.
    t.served.delete("/apis/example.com/v1");
    t.served.delete("/apis/example.com/v1beta1");
    d.forgetGroup("example.com");
    await assert.rejects(d.resourceFor("example.com/v1", "Widget"), (err: unknown) => {
      assert.ok(err instanceof KindNotFoundError);
      assert.equal(err.apiVersion, "example.com/v1");
      return true;
    });
    await d.resourceFor("apps/v1", "Deployment");
    assert.equal(t.requests.filter((p) => p === "/apis/apps/v1").length, 1, "other groups stay cached");

    // Re-created cluster-scoped: forgetting one version picks up the new scope.
    t.served.set("/apis/example.com/v1", widgets(false));
    assert.equal((await d.resourceFor("example.com/v1", "Widget")).namespaced, false);
    t.served.set("/apis/example.com/v1", widgets(true));
    assert.equal((await d.resourceFor("example.com/v1", "Widget")).namespaced, false, "cached until forgotten");
    d.forget("example.com/v1");
    assert.equal((await d.resourceFor("example.com/v1", "Widget")).namespaced, true);
  });

  it("does not store an answer that was under way when the group was forgotten", async () => {
    const t = new ScriptedTransport();
    t.served.set("/apis/example.com/v1", widgets());
    const d = new Discovery(t);
    let open!: () => void;
    t.gate = new Promise((resolve) => (open = resolve));
    const pending = d.resourceFor("example.com/v1", "Widget");
    await Promise.resolve();
    d.forgetGroup("example.com");
    t.served.delete("/apis/example.com/v1");
    t.gate = undefined;
    open();
    await pending; // the caller that started it gets its answer ...
    await assert.rejects(d.resourceFor("example.com/v1", "Widget"), KindNotFoundError); // ... but it was not kept
  });

  it("lists the served versions of a kind, the preferred one first", async () => {
    const t = new ScriptedTransport();
    t.served.set("/apis/example.com", {
      versions: [
        { groupVersion: "example.com/v2", version: "v2" },
        { groupVersion: "example.com/v1", version: "v1" },
        { groupVersion: "example.com/v1beta1", version: "v1beta1" },
      ],
      preferredVersion: { groupVersion: "example.com/v1", version: "v1" },
    });
    t.served.set("/apis/example.com/v1", widgets());
    t.served.set("/apis/example.com/v1beta1", widgets());
    t.served.set("/apis/example.com/v2", { resources: [{ name: "gadgets", kind: "Gadget", namespaced: true }] });
    t.served.set("/api/v1", { resources: [{ name: "configmaps", kind: "ConfigMap", namespaced: true }] });
    const d = new Discovery(t);
    assert.deepEqual(await d.servedVersions("example.com", "Widget"), ["example.com/v1", "example.com/v1beta1"]);
    assert.deepEqual(await d.servedVersions("example.com", "Gadget"), ["example.com/v2"]);
    assert.deepEqual(await d.servedVersions("example.com", "Nope"), []);
    assert.deepEqual(await d.servedVersions("gone.example.com", "Widget"), [], "a group not served at all");
    assert.deepEqual(await d.servedVersions("", "ConfigMap"), ["v1"]);
  });

  it("passes on discovery failures that are not 404", async () => {
    const d = new Discovery({
      json: () => Promise.reject(new KubeApiError({ status: 503, reason: "ServiceUnavailable", serverMessage: "unavailable", operation: "discover" })),
    });
    await assert.rejects(d.resourceFor("metrics.k8s.io/v1beta1", "PodMetrics"), (err: unknown) => err instanceof KubeApiError && err.status === 503);
    await assert.rejects(d.servedVersions("metrics.k8s.io", "PodMetrics"), (err: unknown) => err instanceof KubeApiError && err.status === 503);
  });
});

describe("isUnservedPath", () => {
  const err = (status: number, serverMessage: string) => new KubeApiError({ status, reason: "NotFound", serverMessage, operation: "get" });
  it("is true for the API server's fallback 404 and an unknown resource in a served group version", () => {
    assert.equal(isUnservedPath(err(404, "404 page not found\n")), true);
    assert.equal(isUnservedPath(err(404, "the server could not find the requested resource")), true);
  });
  it("is false for a missing object or namespace, and for other errors", () => {
    assert.equal(isUnservedPath(err(404, 'widgets.example.com "a" not found')), false);
    assert.equal(isUnservedPath(err(404, 'namespaces "gone" not found')), false);
    assert.equal(isUnservedPath(err(500, "404 page not found")), false);
    assert.equal(isUnservedPath(new Error("404 page not found")), false);
  });
});

describe("crdGroupOf", () => {
  const crd = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" };
  it("reads spec.group, else the name after its first dot", () => {
    assert.equal(crdGroupOf({ ...crd, name: "prometheusrules.monitoring.coreos.com", spec: { group: "monitoring.coreos.com" } }), "monitoring.coreos.com");
    assert.equal(crdGroupOf({ ...crd, name: "prometheusrules.monitoring.coreos.com" }), "monitoring.coreos.com");
  });
  it("is undefined for anything but a CRD", () => {
    assert.equal(crdGroupOf({ apiVersion: "v1", kind: "ConfigMap", name: "a.b" }), undefined);
    assert.equal(crdGroupOf({ apiVersion: "example.com/v1", kind: "CustomResourceDefinition", name: "a.b" }), undefined);
  });
});

// KubeClient against a real API server: server-side apply, reads, watches,
// the error classification the pipeline relies on, impersonation and the
// request counters.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { KubeClient, refOf, type WatchEvent } from "../../src/kube/client.js";
import {
  isAlreadyExists,
  isConflict,
  isForbidden,
  isInvalid,
  isNotFound,
  KindNotFoundError,
  KubeApiError,
} from "../../src/kube/errors.js";
import { Reasons } from "../../src/errors.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";
import { waitFor } from "../support/wait.js";
import { widgetCrd } from "../support/widgets.js";

let client: KubeClient;
let namespace: string;

before(async () => {
  const cluster = await testCluster();
  client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  namespace = await createTestNamespace(cluster, "kube-client");
});

after(() => client.close());

const configMap = (name: string, data: Record<string, string>, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace, labels },
  data,
});

const ref = (name: string) => ({ apiVersion: "v1", kind: "ConfigMap", namespace, name });

describe("discovery", () => {
  test("maps kinds to resources and scope", async () => {
    assert.deepEqual(await client.resourceFor("apps/v1", "Deployment"), {
      group: "apps",
      version: "v1",
      kind: "Deployment",
      resource: "deployments",
      namespaced: true,
      verbs: (await client.resourceFor("apps/v1", "Deployment")).verbs,
    });
    const ns = await client.resourceFor("v1", "Namespace");
    assert.equal(ns.resource, "namespaces");
    assert.equal(ns.namespaced, false);
    assert.ok(ns.verbs.includes("list"));
  });

  test("an unknown kind or group is a KindNotFoundError naming both", async () => {
    await assert.rejects(client.resourceFor("apps/v1", "Nope"), (err: unknown) => {
      assert.ok(err instanceof KindNotFoundError);
      assert.match(err.message, /no kind Nope in apps\/v1/);
      return true;
    });
    await assert.rejects(client.resourceFor("nope.example.com/v1", "Thing"), KindNotFoundError);
  });

  test("finds a CRD installed after the first miss, with its status subresource", async () => {
    const group = `t${randomBytes(4).toString("hex")}.stages.test`;
    const crdName = `widgets.${group}`;
    const apiVersion = `${group}/v1`;
    await assert.rejects(client.resourceFor(apiVersion, "Widget"), KindNotFoundError);
    await client.apply(
      widgetCrd(group, {
        statusSubresource: true,
        schema: {
          type: "object",
          properties: {
            spec: { type: "object", properties: { size: { type: "integer" } } },
            status: { type: "object", properties: { phase: { type: "string" } } },
          },
        },
      }),
      { fieldManager: "kube-client-test" },
    );
    try {
      const info = await waitFor(() => client.resourceFor(apiVersion, "Widget").catch(() => undefined), {
        description: `discovery of ${crdName}`,
        timeoutMs: 30_000,
      });
      assert.equal(info.resource, "widgets");

      const widget = { apiVersion, kind: "Widget", metadata: { name: "w", namespace }, spec: { size: 1 } };
      await waitFor(() => client.apply(widget, { fieldManager: "test" }).catch(() => undefined), {
        description: "first Widget accepted",
        timeoutMs: 30_000,
      });
      // The main resource ignores status; the status subresource takes only status.
      const withStatus = await client.applyStatus(
        { apiVersion, kind: "Widget", metadata: { name: "w", namespace }, status: { phase: "Ready" } },
        { fieldManager: "test-status" },
      );
      assert.deepEqual(withStatus.status, { phase: "Ready" });
      const live = (await client.get(refOf(widget as KubeObject)))!;
      const updated = await client.updateStatus({ ...live, status: { phase: "Done" }, spec: { size: 99 } });
      assert.deepEqual(updated.status, { phase: "Done" });
      assert.deepEqual(updated.spec, { size: 1 }, "updateStatus does not touch spec");
    } finally {
      await client.delete({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name: crdName });
    }
  });
});

describe("server-side apply", () => {
  test("creates, is idempotent, and conflicts with another manager unless forced", async () => {
    const first = await client.apply(configMap("ssa", { a: "1" }), { fieldManager: "manager-a" });
    assert.deepEqual(first.data, { a: "1" });
    const again = await client.apply(configMap("ssa", { a: "1" }), { fieldManager: "manager-a" });
    assert.equal(again.metadata.resourceVersion, first.metadata.resourceVersion, "re-applying the same intent is a no-op");

    await assert.rejects(client.apply(configMap("ssa", { a: "2" }), { fieldManager: "manager-b" }), (err: unknown) => {
      assert.ok(isConflict(err));
      assert.match((err as Error).message, /apply configmaps .*\/ssa: .*manager-a.* \(HTTP 409 Conflict\)/s);
      return true;
    });
    const forced = await client.apply(configMap("ssa", { a: "2" }), { fieldManager: "manager-b", force: true });
    assert.deepEqual(forced.data, { a: "2" });
  });

  test("dry run validates without persisting", async () => {
    const dry = await client.apply(configMap("dry", { x: "y" }), { fieldManager: "test", dryRun: true });
    assert.equal(dry.metadata.name, "dry");
    assert.equal(await client.get(ref("dry")), undefined);
  });

  test("an invalid object is Invalid (422), terminal, with the field", async () => {
    await assert.rejects(
      client.apply(
        { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "Bad_Name", namespace }, data: {} },
        { fieldManager: "test" },
      ),
      (err: unknown) => {
        assert.ok(isInvalid(err));
        assert.equal((err as KubeApiError).terminal, true);
        assert.ok((err as KubeApiError).causes.some((c) => c.field === "metadata.name"));
        return true;
      },
    );
  });
});

describe("CRUD", () => {
  test("get is undefined for a missing object; delete reports whether it existed", async () => {
    assert.equal(await client.get(ref("missing")), undefined);
    await client.create(configMap("crud", { k: "v" }));
    const got = await client.get(ref("crud"));
    assert.equal(got?.apiVersion, "v1");
    assert.equal(got?.kind, "ConfigMap");
    assert.deepEqual(got?.data, { k: "v" });
    assert.equal(await client.delete(ref("crud")), true);
    assert.equal(await client.delete(ref("crud")), false);
  });

  test("create of an existing object is AlreadyExists; a stale update is Conflict", async () => {
    const created = await client.create(configMap("versions", { v: "1" }));
    await assert.rejects(client.create(configMap("versions", { v: "1" })), isAlreadyExists);
    const updated = await client.update({ ...created, data: { v: "2" } });
    assert.deepEqual(updated.data, { v: "2" });
    await assert.rejects(client.update({ ...created, data: { v: "3" } }), (err: unknown) => {
      assert.ok(isConflict(err));
      assert.match((err as Error).message, /update configmaps .*\/versions/);
      return true;
    });
  });

  test("merge, JSON and strategic patches; dry-run patches change nothing", async () => {
    await client.create(configMap("patched", { a: "1" }));
    const merged = await client.patch(ref("patched"), { data: { b: "2" } }, "merge");
    assert.deepEqual(merged.data, { a: "1", b: "2" });
    const json = await client.patch(ref("patched"), [{ op: "remove", path: "/data/a" }], "json");
    assert.deepEqual(json.data, { b: "2" });
    const strategic = await client.patch(ref("patched"), { metadata: { labels: { s: "1" } } }, "strategic");
    assert.equal(strategic.metadata.labels?.s, "1");
    await client.patch(ref("patched"), { data: { c: "3" } }, "merge", { dryRun: true });
    assert.deepEqual((await client.get(ref("patched")))?.data, { b: "2" });
    await assert.rejects(client.patch(ref("nothing-here"), { data: {} }, "merge"), isNotFound);
  });

  test("delete honours preconditions and dry run", async () => {
    const created = await client.create(configMap("precondition", {}));
    assert.equal(await client.delete(ref("precondition"), { dryRun: true }), true);
    assert.ok(await client.get(ref("precondition")));
    await assert.rejects(client.delete(ref("precondition"), { preconditions: { uid: "not-the-uid" } }), isConflict);
    assert.equal(
      await client.delete(ref("precondition"), { preconditions: { uid: created.metadata.uid }, propagationPolicy: "Foreground" }),
      true,
    );
  });

  test("a namespaced kind without a namespace is refused before any request", async () => {
    const before = client.stats();
    await assert.rejects(client.get({ apiVersion: "v1", kind: "ConfigMap", name: "x" }), /is namespaced .* no namespace/);
    assert.deepEqual(client.stats(), before);
  });
});

describe("list and watch", () => {
  test("lists by label, page by page, and all at once", async () => {
    for (let i = 0; i < 5; i++) await client.create(configMap(`page-${i}`, {}, { suite: "paging" }));
    await client.create(configMap("other", {}, { suite: "else" }));
    const first = await client.list("v1", "ConfigMap", { namespace, labelSelector: "suite=paging", limit: 2 });
    assert.equal(first.items.length, 2);
    assert.ok(first.continue);
    assert.equal(first.items[0]?.kind, "ConfigMap");
    const second = await client.list("v1", "ConfigMap", {
      namespace,
      labelSelector: "suite=paging",
      limit: 2,
      continue: first.continue,
    });
    assert.equal(second.items.length, 2);
    const all = await client.listAll("v1", "ConfigMap", { namespace, labelSelector: "suite=paging", pageSize: 2 });
    assert.deepEqual(
      all.items.map((o) => o.metadata.name).sort(),
      ["page-0", "page-1", "page-2", "page-3", "page-4"],
    );
    assert.ok(all.resourceVersion);
    const byField = await client.list("v1", "ConfigMap", { namespace, fieldSelector: "metadata.name=other" });
    assert.deepEqual(byField.items.map((o) => o.metadata.name), ["other"]);
  });

  test("watches from a resourceVersion and ends quietly on abort", async () => {
    const start = await client.list("v1", "ConfigMap", { namespace, labelSelector: "suite=watch" });
    const abort = new AbortController();
    const events: WatchEvent[] = [];
    const done = (async () => {
      for await (const event of client.watch("v1", "ConfigMap", {
        namespace,
        labelSelector: "suite=watch",
        resourceVersion: start.resourceVersion,
        allowWatchBookmarks: true,
        signal: abort.signal,
      })) {
        if (event.type !== "BOOKMARK") events.push(event);
      }
    })();
    await client.create(configMap("watched", { n: "1" }, { suite: "watch" }));
    await client.patch(ref("watched"), { data: { n: "2" } }, "merge");
    await client.delete(ref("watched"));
    await waitFor(() => events.length >= 3, { description: "three watch events", timeoutMs: 10_000 });
    abort.abort();
    await done;
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.object.kind} ${e.object.metadata.name}`),
      ["ADDED ConfigMap watched", "MODIFIED ConfigMap watched", "DELETED ConfigMap watched"],
    );
  });

  test("a watch from a resourceVersion older than the watch cache fails as Gone", async () => {
    // Built-in kinds are cached from the cluster's first revision on, so a
    // fresh cluster serves any old version; a CRD's cache starts when the CRD
    // is installed, which makes "1" too old.
    // Right after the control plane starts, the CRD's watch cache may still be
    // initializing (429); only once it serves is "1" too old.
    const watchFromOne = async (): Promise<unknown> => {
      try {
        for await (const _ of client.watch("stages.metio.wtf/v1", "StageSet", { namespace, resourceVersion: "1" })) {
          // no event can precede the error
        }
        return undefined;
      } catch (err) {
        return err;
      }
    };
    const err = await waitFor(
      async () => {
        const outcome = await watchFromOne();
        return outcome instanceof KubeApiError && outcome.status === 429 ? undefined : (outcome ?? "the watch ended without an error");
      },
      { description: "the StageSet watch cache to serve", timeoutMs: 30_000, intervalMs: 250 },
    );
    assert.ok(err instanceof KubeApiError && err.status === 410, `expected 410 Gone, got ${String(err)}`);
  });
});

describe("impersonation", () => {
  test("a ServiceAccount without RBAC is Forbidden (RBACDenied); after a RoleBinding it may write", async () => {
    const tenant = client.asServiceAccount(namespace, "deployer");
    assert.equal(tenant.identity?.user, `system:serviceaccount:${namespace}:deployer`);
    await assert.rejects(tenant.apply(configMap("as-tenant", { a: "1" }), { fieldManager: "test" }), (err: unknown) => {
      assert.ok(isForbidden(err));
      assert.equal((err as KubeApiError).reason, Reasons.RBACDenied);
      assert.match((err as Error).message, new RegExp(`system:serviceaccount:${namespace}:deployer`));
      return true;
    });
    await client.apply(
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "configmaps", namespace },
        rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch", "create", "patch", "update"] }],
      },
      { fieldManager: "test" },
    );
    await client.apply(
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "deployer", namespace },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "configmaps" },
        subjects: [{ kind: "ServiceAccount", name: "deployer", namespace }],
      },
      { fieldManager: "test" },
    );
    const applied = await waitFor(
      () => tenant.apply(configMap("as-tenant", { a: "1" }), { fieldManager: "tenant" }).catch(() => undefined),
      { description: "the tenant's RoleBinding takes effect", timeoutMs: 10_000 },
    );
    assert.equal(applied.metadata.name, "as-tenant");
    const managers = (applied.metadata.managedFields as { manager: string }[]).map((m) => m.manager);
    assert.ok(managers.includes("tenant"));
    // Still no right to delete: impersonation really bounds what the tenant can do.
    await assert.rejects(tenant.delete(ref("as-tenant")), isForbidden);
  });
});

describe("request accounting", () => {
  test("counts requests by verb across derived clients; reads are no writes", async () => {
    await client.create(configMap("counted", {}));
    client.resetStats();
    await client.get(ref("counted"));
    await client.list("v1", "ConfigMap", { namespace });
    await client.asServiceAccount(namespace, "nobody").get(ref("counted")).catch(() => undefined);
    assert.equal(client.writeCount(), 0);
    assert.equal(client.stats().get, 2);
    assert.equal(client.stats().list, 1);
    await client.apply(configMap("counted", { x: "1" }), { fieldManager: "test" });
    await client.patch(ref("counted"), { data: { y: "2" } }, "merge");
    await client.delete(ref("counted"));
    const stats = client.stats();
    assert.deepEqual([stats.apply, stats.patch, stats.delete, stats.create, stats.update], [1, 1, 1, 0, 0]);
    assert.equal(client.writeCount(), 3);
  });
});

describe("timeouts", () => {
  test("a request that cannot finish in time fails as Timeout", async () => {
    // The cluster's own credentials, sent to a loopback address that accepts
    // the connection and never answers (a stalled network): the client's
    // deadline ends the first request (discovery, before the get). (A 1 ms
    // deadline against the live API server raced its answer and sometimes lost.)
    const held: Socket[] = [];
    const blackHole = createServer((socket) => void held.push(socket));
    await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
    const { port } = blackHole.address() as AddressInfo;
    const { kubeConfig } = await testCluster();
    const stalled = KubeClient.fromKubeConfig({
      getCurrentCluster: () => ({ ...kubeConfig.getCurrentCluster()!, server: `https://127.0.0.1:${port}` }),
      getCurrentUser: () => kubeConfig.getCurrentUser(),
    }, { timeoutMs: 200 });
    try {
      const started = performance.now();
      await assert.rejects(
        stalled.get(ref("anything")),
        (err: unknown) => err instanceof KubeApiError && err.statusReason === "Timeout" && err.status === 0 && /200ms/.test(err.message),
      );
      assert.ok(performance.now() - started < 10_000, "ended by the client's deadline, not the 30 s default");
      assert.ok(held.length > 0, "the request reached the stalled address");
    } finally {
      stalled.close();
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => blackHole.close(() => resolve()));
    }
  });
});

// The six action executors against the real control plane, each run as a
// tenant ServiceAccount (impersonated) the way the reconciler runs them:
// job (complete, fail with the pod's termination message, adopt, new
// revision, history), patch (merge and json6902, by name and by selector),
// delete (present, missing, held by a finalizer), wait (duration, CEL true,
// CEL timeout, CEL compile error), apply with wait, and RBACDenied naming the
// verb and the object for a tenant that lacks the rights. Waits that must run
// out use a FakeClock; waits for the cluster poll for conditions.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { before, describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { ActionRBACDeniedError } from "../../src/actions/common.js";
import { executorFor } from "../../src/actions/executors.js";
import { jobName, REVISION_HASH_LABEL } from "../../src/actions/job.js";
import { ActionLedger } from "../../src/actions/ledger.js";
import { ActionFailedError, runActionList } from "../../src/actions/runner.js";
import type { ActionEnv, ActionList } from "../../src/actions/types.js";
import type { Action, KubeObject, StageSet } from "../../src/api/types.js";
import { InvalidSpecError, Reasons, StageFailedError } from "../../src/errors.js";
import { KubeClient } from "../../src/kube/client.js";
import { systemClock, type Clock } from "../../src/util/clock.js";
import { silentLogger } from "../../src/util/log.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { FakeClock } from "../support/fake-clock.js";
import { waitFor } from "../support/wait.js";

let cluster: TestCluster;
let admin: KubeClient;

before(async () => {
  cluster = await testCluster();
  admin = KubeClient.fromKubeConfig(cluster.kubeConfig);
});

/** A namespace with ServiceAccount `tenant` that may do anything in it (a Role, not cluster-wide rights). */
async function tenantNamespace(prefix: string): Promise<{ ns: string; tenant: KubeClient }> {
  const ns = await createTestNamespace(cluster, prefix);
  await admin.create({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "tenant", namespace: ns } });
  await admin.create({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: "everything", namespace: ns },
    rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }],
  });
  await admin.create({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: "tenant", namespace: ns },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "everything" },
    subjects: [{ kind: "ServiceAccount", name: "tenant", namespace: ns }],
  });
  const tenant = admin.asServiceAccount(ns, "tenant");
  await waitFor(() => tenant.list("batch/v1", "Job", { namespace: ns }).then(() => true).catch(() => false), {
    description: "the tenant's RoleBinding takes effect",
    timeoutMs: 15_000,
  });
  return { ns, tenant };
}

interface EnvOptions {
  revision?: string;
  /** Manifests env.render returns (any source, any path). */
  manifests?: string;
  clock?: Clock;
  timeoutMs?: number;
  list?: ActionList;
  actions?: Action[];
}

function envFor(ns: string, tenant: KubeClient, o: EnvOptions = {}): ActionEnv {
  const revision = o.revision ?? "main@sha1:0001";
  const stage = { name: "app", sourceRef: { name: "app" }, actions: { [o.list ?? "pre"]: o.actions ?? [] } };
  return {
    stageSet: { apiVersion: "stages.metio.wtf/v1", kind: "StageSet", metadata: { name: "web", namespace: ns }, spec: { stages: [stage] } } as StageSet,
    stage,
    stageIndex: 0,
    list: o.list ?? "pre",
    revision,
    tenant,
    render: async () => ({
      objects: parseAllDocuments(o.manifests ?? "")
        .map((d) => d.toJS() as KubeObject | null)
        .filter((x): x is KubeObject => x !== null),
      revision,
    }),
    allowedHosts: [],
    timeoutMs: o.timeoutMs ?? 60_000,
    clock: o.clock ?? systemClock,
    signal: new AbortController().signal,
    log: silentLogger(),
  };
}

function run(action: Action, env: ActionEnv) {
  return executorFor(action)(action, env);
}

const JOB = (name: string, podMeta = "{}") => `apiVersion: batch/v1
kind: Job
metadata: {name: ${name}}
spec:
  backoffLimit: 0
  template:
    metadata: ${podMeta}
    spec:
      restartPolicy: Never
      containers: [{name: main, image: registry.invalid/migrate:1}]
`;

const jobAction: Action = { name: "migrate", job: { sourceRef: { name: "migrations" } } };
const jobRef = (ns: string, name: string) => ({ apiVersion: "batch/v1", kind: "Job", namespace: ns, name });
const cmRef = (ns: string, name: string) => ({ apiVersion: "v1", kind: "ConfigMap", namespace: ns, name });

async function configMap(ns: string, name: string, data: Record<string, string>, labels: Record<string, string> = {}, extra: Partial<KubeObject["metadata"]> = {}) {
  await admin.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns, labels, ...extra }, data });
}

/**
 * Whether the control plane's kwok runs the pod-fail stage: a labelled bare
 * Pod turns Failed. A control plane started before that stage existed keeps
 * it Running (given 15s to show).
 */
async function kwokFailsPods(ns: string): Promise<boolean> {
  await admin.create({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "kwok-probe", namespace: ns, labels: { "stageset.test/fail": "true" } },
    spec: { restartPolicy: "Never", containers: [{ name: "main", image: "registry.invalid/probe:1" }] },
  });
  try {
    await waitFor(async () => ((await admin.get({ apiVersion: "v1", kind: "Pod", namespace: ns, name: "kwok-probe" }))?.status as { phase?: string } | undefined)?.phase === "Failed", {
      description: "the probe Pod failed by kwok's pod-fail stage",
      timeoutMs: 15_000,
      intervalMs: 200,
    });
    return true;
  } catch {
    return false;
  }
}

describe("job action", () => {
  test("runs the rendered Job under a revision-hashed name, adopts it on a re-run, runs a new one for a new revision, keeps three revisions", async () => {
    const { ns, tenant } = await tenantNamespace("action-job");
    const manifests = JOB("migrate");

    const first = await run(jobAction, envFor(ns, tenant, { revision: "r1", manifests }));
    const name1 = jobName("migrate", "r1");
    assert.match(name1, /^migrate-[0-9a-f]{8}$/);
    assert.equal(first.message, `Job ${ns}/${name1} completed`);
    const job1 = await admin.get(jobRef(ns, name1));
    assert.ok(job1, "the Job exists");
    assert.deepEqual(
      Object.fromEntries(Object.entries(job1.metadata.labels ?? {}).filter(([k]) => k.startsWith("stages.metio.wtf/"))),
      {
        "stages.metio.wtf/name": "web",
        "stages.metio.wtf/namespace": ns,
        "stages.metio.wtf/stage": "app",
        "stages.metio.wtf/action": "migrate",
        "stages.metio.wtf/action-list": "pre",
        [REVISION_HASH_LABEL]: name1.slice(-8),
      },
    );
    assert.equal(job1.metadata.annotations?.["stages.metio.wtf/revision"], "r1");

    // The same revision again (a crash after the Job was created): adopted, not created twice.
    admin.resetStats();
    await run(jobAction, envFor(ns, tenant, { revision: "r1", manifests }));
    assert.equal(admin.stats().create, 0, "no create request");
    assert.equal((await admin.get(jobRef(ns, name1)))?.metadata.uid, job1.metadata.uid);

    // New revisions run new Jobs; after the fourth, the first revision's Job is cleaned up.
    for (const revision of ["r2", "r3"]) await run(jobAction, envFor(ns, tenant, { revision, manifests }));
    const names = () => admin.list("batch/v1", "Job", { namespace: ns }).then((l) => l.items.map((j) => j.metadata.name).sort());
    assert.deepEqual(await names(), [jobName("migrate", "r1"), jobName("migrate", "r2"), jobName("migrate", "r3")].sort());
    await run(jobAction, envFor(ns, tenant, { revision: "r4", manifests }));
    await waitFor(async () => !(await names()).includes(name1), { description: `Job ${name1} of the oldest revision deleted`, timeoutMs: 30_000 });
    assert.deepEqual(await names(), [jobName("migrate", "r2"), jobName("migrate", "r3"), jobName("migrate", "r4")].sort());
  });

  test("a Job whose pods fail fails the action with the pod's termination message", async () => {
    const { ns, tenant } = await tenantNamespace("action-job-fail");
    assert.ok(
      await kwokFailsPods(ns),
      "kwok did not fail the probe pod: this control plane was started before the pod-fail kwok stage (test/support/controlplane/kwok-stages.yaml); restart it",
    );
    const manifests = JOB(
      "migrate",
      `{labels: {stageset.test/fail: "true"}, annotations: {stageset.test/termination-message: "migration 0042 failed: duplicate key users_email"}}`,
    );
    const name = jobName("migrate", "r1");
    await assert.rejects(run(jobAction, envFor(ns, tenant, { revision: "r1", manifests })), (err: unknown) => {
      assert.ok(err instanceof StageFailedError, String(err));
      assert.match(err.message, new RegExp(`^job action "migrate": Job ${ns}/${name} failed: BackoffLimitExceeded`));
      assert.match(err.message, /container "main" exited 1 \(Error\): migration 0042 failed: duplicate key users_email$/);
      return true;
    });
  });

  test("retries: 2 on a failing job runs its Job three times (a failed Job is replaced, not adopted)", async () => {
    const { ns, tenant } = await tenantNamespace("action-job-retry");
    const manifests = JOB("flaky", `{labels: {stageset.test/fail: "true"}, annotations: {stageset.test/termination-message: "still broken"}}`);
    const action: Action = { name: "flaky", retries: 2, job: { sourceRef: { name: "migrations" } } };
    const env = envFor(ns, tenant, { revision: "r1", manifests });
    const uids = new Set<string>();
    const status = { name: "app", phase: "Applying" as const };
    await assert.rejects(
      runActionList({
        list: "pre",
        actions: [action],
        env,
        ledger: new ActionLedger(status, "r1", async () => {}),
        executorFor: (a) => async (act, e) => {
          try {
            return await executorFor(a)(act, e);
          } finally {
            const live = await admin.get({ apiVersion: "batch/v1", kind: "Job", namespace: ns, name: jobName("flaky", "r1") });
            if (live?.metadata.uid) uids.add(live.metadata.uid);
          }
        },
      }),
      (err: unknown) => err instanceof ActionFailedError && /after 3 attempts\): .*still broken/.test(err.message),
    );
    assert.equal(uids.size, 3, "three distinct Jobs ran");
  });

  test("a source with other kinds than Jobs fails naming them, creating nothing", async () => {
    const { ns, tenant } = await tenantNamespace("action-job-kinds");
    const manifests = `${JOB("migrate")}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n`;
    await assert.rejects(run(jobAction, envFor(ns, tenant, { manifests })), /job action "migrate": the source renders objects other than batch\/v1 Jobs: ConfigMap settings; a job action runs only Jobs/);
    assert.deepEqual((await admin.list("batch/v1", "Job", { namespace: ns })).items, []);
  });
});

describe("patch action", () => {
  test("merge by name: strategic merge for a built-in kind (containers merged by name), JSON merge for a custom resource", async () => {
    const { ns, tenant } = await tenantNamespace("action-patch-merge");
    await admin.create({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: ns },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: { containers: [{ name: "main", image: "registry.invalid/web:1" }, { name: "sidecar", image: "registry.invalid/proxy:1" }] },
        },
      },
    });
    const result = await run(
      { name: "bump", patch: { target: { apiVersion: "apps/v1", kind: "Deployment", name: "web" }, patch: "spec:\n  template:\n    spec:\n      containers: [{name: main, image: registry.invalid/web:2}]\n" } },
      envFor(ns, tenant),
    );
    assert.equal(result.message, `patched Deployment ${ns}/web (merge)`);
    const live = await admin.get({ apiVersion: "apps/v1", kind: "Deployment", namespace: ns, name: "web" });
    const containers = (live?.spec as { template: { spec: { containers: { name: string; image: string }[] } } }).template.spec.containers;
    assert.deepEqual(containers.map((c) => `${c.name}=${c.image}`), ["main=registry.invalid/web:2", "sidecar=registry.invalid/proxy:1"]);

    await admin.create({ apiVersion: "stages.metio.wtf/v1", kind: "StageInventory", metadata: { name: "scratch", namespace: ns }, spec: { stagePosition: 0, entries: [] } });
    await run(
      { name: "label", patch: { target: { apiVersion: "stages.metio.wtf/v1", kind: "StageInventory", name: "scratch" }, type: "merge", patch: '{"metadata": {"labels": {"patched": "yes"}}}' } },
      envFor(ns, tenant),
    );
    assert.equal((await admin.get({ apiVersion: "stages.metio.wtf/v1", kind: "StageInventory", namespace: ns, name: "scratch" }))?.metadata.labels?.patched, "yes");
  });

  test("json6902 by name, and merge and json6902 by selector (every match, nothing else)", async () => {
    const { ns, tenant } = await tenantNamespace("action-patch-json");
    await configMap(ns, "one", { a: "1" }, { app: "x" });
    await configMap(ns, "two", { a: "1" }, { app: "x" });
    await configMap(ns, "other", { a: "1" }, { app: "y" });

    await run({ name: "add", patch: { target: { apiVersion: "v1", kind: "ConfigMap", name: "one" }, type: "json6902", patch: "- {op: add, path: /data/b, value: '2'}" } }, envFor(ns, tenant));
    assert.deepEqual((await admin.get(cmRef(ns, "one")))?.data, { a: "1", b: "2" });

    const bySelector = await run(
      { name: "flag", patch: { target: { apiVersion: "v1", kind: "ConfigMap", selector: "app=x" }, patch: "data: {flag: 'on'}" } },
      envFor(ns, tenant),
    );
    assert.equal(bySelector.message, `patched 2 ConfigMap objects in namespace ${ns} with labels app=x (merge)`);
    await run(
      { name: "ops", patch: { target: { apiVersion: "v1", kind: "ConfigMap", selector: "app=x" }, type: "json6902", patch: '[{"op": "replace", "path": "/data/a", "value": "9"}]' } },
      envFor(ns, tenant),
    );
    for (const name of ["one", "two"]) {
      const data = (await admin.get(cmRef(ns, name)))?.data as Record<string, string>;
      assert.deepEqual([data.a, data.flag], ["9", "on"], name);
    }
    assert.deepEqual((await admin.get(cmRef(ns, "other")))?.data, { a: "1" }, "outside the selector");
  });

  test("a missing object, an empty selection and a malformed patch fail clearly", async () => {
    const { ns, tenant } = await tenantNamespace("action-patch-errors");
    await assert.rejects(
      run({ name: "p", patch: { target: { apiVersion: "v1", kind: "ConfigMap", name: "nope" }, patch: "data: {a: b}" } }, envFor(ns, tenant)),
      new RegExp(`patch action "p": ConfigMap ${ns}/nope does not exist$`),
    );
    await assert.rejects(
      run({ name: "p", patch: { target: { apiVersion: "v1", kind: "ConfigMap", selector: "app=none" }, patch: "data: {a: b}" } }, envFor(ns, tenant)),
      /patch action "p": no ConfigMap objects in namespace .* with labels app=none exist to patch/,
    );
    const action: Action = { name: "p", patch: { target: { apiVersion: "v1", kind: "ConfigMap", name: "x" }, type: "json6902", patch: "{a: b}" } };
    await assert.rejects(run(action, envFor(ns, tenant, { actions: [action] })), (err: unknown) => {
      assert.ok(err instanceof InvalidSpecError);
      assert.match(err.message, /^spec\.stages\[0\]\.actions\.pre\[0\]\.patch\.patch: a json6902 patch is a list of operations/);
      return true;
    });
  });
});

describe("delete action", () => {
  test("deletes a present object and waits until it is gone; a missing one counts as success; by selector", async () => {
    const { ns, tenant } = await tenantNamespace("action-delete");
    await configMap(ns, "old", { a: "1" });
    const gone = await run({ name: "rm", delete: { target: { apiVersion: "v1", kind: "ConfigMap", name: "old" } } }, envFor(ns, tenant));
    assert.equal(gone.message, `deleted ConfigMap ${ns}/old`);
    assert.equal(await admin.get(cmRef(ns, "old")), undefined);

    const missing = await run({ name: "rm", delete: { target: { apiVersion: "v1", kind: "ConfigMap", name: "old" } } }, envFor(ns, tenant));
    assert.equal(missing.message, `ConfigMap ${ns}/old was already gone`);

    await configMap(ns, "a", {}, { tier: "tmp" });
    await configMap(ns, "b", {}, { tier: "tmp" });
    await configMap(ns, "keep", {}, { tier: "app" });
    const bySelector = await run({ name: "rm", delete: { target: { apiVersion: "v1", kind: "ConfigMap", selector: "tier=tmp" } } }, envFor(ns, tenant));
    assert.equal(bySelector.message, `deleted 2 ConfigMap objects in namespace ${ns} with labels tier=tmp`);
    const left = (await admin.list("v1", "ConfigMap", { namespace: ns, labelSelector: "tier" })).items.map((c) => c.metadata.name);
    assert.deepEqual(left, ["keep"]);
  });

  test("an object held by a finalizer fails at the timeout of the action's clock, naming the finalizer", async () => {
    const { ns, tenant } = await tenantNamespace("action-delete-held");
    await configMap(ns, "held", {}, {}, { finalizers: ["example.com/hold"] });
    const clock = new FakeClock({ autoAdvance: true });
    try {
      await assert.rejects(
        run({ name: "rm", delete: { target: { apiVersion: "v1", kind: "ConfigMap", name: "held" } } }, envFor(ns, tenant, { clock, timeoutMs: 10_000 })),
        new RegExp(`delete action "rm": ConfigMap ${ns}/held \\(finalizers: example\\.com/hold\\) still exist 10s after deletion`),
      );
      assert.equal(clock.sleeps.reduce((a, b) => a + b, 0), 10_000);
    } finally {
      await admin.patch(cmRef(ns, "held"), { metadata: { finalizers: null } }, "merge");
    }
  });
});

describe("wait action", () => {
  test("duration: sleeps on the action's clock", async () => {
    const { ns, tenant } = await tenantNamespace("action-wait-duration");
    const clock = new FakeClock();
    const pending = run({ name: "pause", wait: { duration: "90s" } }, envFor(ns, tenant, { clock, timeoutMs: 300_000 }));
    await clock.whenSleeping();
    assert.deepEqual(clock.sleeps, [90_000]);
    await clock.advance(90_000);
    assert.equal((await pending).message, "waited 1m30s");
  });

  test("CEL: true once the object satisfies the expression (read as the tenant)", async () => {
    const { ns, tenant } = await tenantNamespace("action-wait-cel");
    await configMap(ns, "gate", { ready: "no" });
    const clock = new FakeClock();
    const action: Action = { name: "gate", wait: { target: { apiVersion: "v1", kind: "ConfigMap", name: "gate" }, expr: "data.ready == 'yes'" } };
    const pending = run(action, envFor(ns, tenant, { clock }));
    await clock.whenSleeping();
    await admin.patch(cmRef(ns, "gate"), { data: { ready: "yes" } }, "merge");
    await clock.advance(1_000);
    assert.equal((await pending).message, `"data.ready == 'yes'" is true on ConfigMap ${ns}/gate`);
  });

  test("CEL: false until the timeout fails naming the object and what it saw; a compile error is InvalidSpec naming the field", async () => {
    const { ns, tenant } = await tenantNamespace("action-wait-timeout");
    await configMap(ns, "gate", { ready: "no" });
    const clock = new FakeClock({ autoAdvance: true });
    const action: Action = { name: "gate", wait: { target: { apiVersion: "v1", kind: "ConfigMap", name: "gate" }, expr: "data.ready == 'yes'" } };
    await assert.rejects(run(action, envFor(ns, tenant, { clock, timeoutMs: 5_000 })), (err: unknown) => {
      assert.ok(err instanceof StageFailedError);
      assert.equal(err.message, `wait action "gate": "data.ready == 'yes'" on ConfigMap ${ns}/gate was not true within 5s (the expression was false)`);
      return true;
    });
    assert.equal(clock.sleeps.reduce((a, b) => a + b, 0), 5_000);

    const broken: Action = { name: "broken", wait: { target: { apiVersion: "v1", kind: "ConfigMap", name: "gate" }, expr: "data.ready ==" } };
    await assert.rejects(run(broken, envFor(ns, tenant, { actions: [action, broken] })), (err: unknown) => {
      assert.ok(err instanceof InvalidSpecError);
      assert.match(err.message, /^spec\.stages\[0\]\.actions\.pre\[1\]\.wait\.expr: invalid CEL expression/);
      return true;
    });
  });
});

describe("apply action", () => {
  test("applies the rendered objects as the tenant, uninventoried, and with wait: true returns once they are Current", async () => {
    const { ns, tenant } = await tenantNamespace("action-apply");
    const manifests = `apiVersion: apps/v1
kind: Deployment
metadata: {name: maintenance}
spec:
  replicas: 1
  selector: {matchLabels: {app: maintenance}}
  template:
    metadata: {labels: {app: maintenance}}
    spec:
      containers: [{name: main, image: registry.invalid/maintenance:1}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: maintenance}
data: {page: down}
`;
    const result = await run({ name: "page", apply: { sourceRef: { name: "maintenance" }, wait: true } }, envFor(ns, tenant, { manifests }));
    assert.equal(result.message, "applied 2 object(s) of revision main@sha1:0001, all Current");
    const deployment = await admin.get({ apiVersion: "apps/v1", kind: "Deployment", namespace: ns, name: "maintenance" });
    assert.equal((deployment?.status as { availableReplicas?: number }).availableReplicas, 1);
    const managers = (deployment?.metadata.managedFields as { manager: string; operation: string }[]).filter((m) => m.operation === "Apply").map((m) => m.manager);
    assert.deepEqual(managers, ["stageset-controller"]);
    assert.deepEqual(deployment?.metadata.labels ?? {}, {}, "no StageSet labels: never inventoried");
    assert.deepEqual((await admin.list("stages.metio.wtf/v1", "StageInventory", { namespace: ns })).items, []);
  });
});

describe("http action with Secrets", () => {
  test("headersFrom and bodyFrom are read as the tenant and sent (not to another origin after a redirect); their values never appear in a message", async () => {
    const { ns, tenant } = await tenantNamespace("action-http-secrets");
    const token = "Bearer s3cr3t-t0ken-value";
    await admin.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "hook", namespace: ns },
      stringData: { Authorization: token, payload: '{"release": "r1"}' },
    });
    const seen: { auth: string | undefined; body: string }[] = [];
    let status = 200;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({ auth: req.headers.authorization, body: Buffer.concat(chunks).toString("utf8") });
        res.writeHead(status);
        // A server that echoes what it got (as error pages sometimes do).
        res.end(`denied for ${req.headers.authorization}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const action: Action = {
        name: "notify",
        http: { url: `http://127.0.0.1:${port}/hook`, headersFrom: [{ name: "hook", key: "Authorization" }], bodyFrom: { name: "hook", key: "payload" } },
      };
      const env = { ...envFor(ns, tenant), allowedHosts: [`127.0.0.1:${port}`] };
      const ok = await run(action, env);
      assert.equal(ok.message, `POST http://127.0.0.1:${port}/hook answered 200`);
      assert.deepEqual(seen, [{ auth: token, body: '{"release": "r1"}' }]);

      status = 401;
      await assert.rejects(run(action, env), (err: unknown) => {
        assert.ok(err instanceof StageFailedError);
        assert.equal(err.message, `http action "notify": POST http://127.0.0.1:${port}/hook answered 401 (expected a 2xx status): denied for [redacted]`);
        return true;
      });

      // A redirect to another origin (allowed) does not carry the Secret's header along.
      const second: { auth: string | undefined }[] = [];
      const other = http.createServer((req, res) => {
        second.push({ auth: req.headers.authorization });
        res.end("ok");
      });
      await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
      const otherPort = (other.address() as AddressInfo).port;
      try {
        const redirecting: Action = {
          name: "notify",
          http: { url: `http://127.0.0.1:${otherPort}/`, method: "GET", headersFrom: [{ name: "hook", key: "Authorization" }] },
        };
        await run(redirecting, { ...env, allowedHosts: [`127.0.0.1:${otherPort}`] });
        assert.deepEqual(second, [{ auth: token }], "same origin: sent");
        const viaRedirect = http.createServer((_req, res) => {
          res.writeHead(307, { location: `http://127.0.0.1:${otherPort}/next` });
          res.end();
        });
        await new Promise<void>((resolve) => viaRedirect.listen(0, "127.0.0.1", resolve));
        const redirectPort = (viaRedirect.address() as AddressInfo).port;
        try {
          await run({ ...redirecting, http: { ...redirecting.http!, url: `http://127.0.0.1:${redirectPort}/` } }, {
            ...env,
            allowedHosts: [`127.0.0.1:${otherPort}`, `127.0.0.1:${redirectPort}`],
          });
          assert.deepEqual(second, [{ auth: token }, { auth: undefined }], "another origin after a redirect: not sent");
        } finally {
          viaRedirect.closeAllConnections();
          await new Promise<void>((resolve) => viaRedirect.close(() => resolve()));
        }
      } finally {
        other.closeAllConnections();
        await new Promise<void>((resolve) => other.close(() => resolve()));
      }

      const missingKey: Action = { name: "notify", http: { url: `http://127.0.0.1:${port}/hook`, headersFrom: [{ name: "hook", key: "X-Missing" }] } };
      await assert.rejects(run(missingKey, env), /http action "notify": headersFrom\[0\]: Secret .*\/hook has no key "X-Missing"/);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("a tenant without the rights", () => {
  test("every operation is RBACDenied naming the verb and the object", async () => {
    const ns = await createTestNamespace(cluster, "action-rbac");
    await admin.create({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "reader", namespace: ns } });
    await admin.create({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "read-configmaps", namespace: ns },
      rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list"] }],
    });
    await admin.create({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "reader", namespace: ns },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "read-configmaps" },
      subjects: [{ kind: "ServiceAccount", name: "reader", namespace: ns }],
    });
    const tenant = admin.asServiceAccount(ns, "reader");
    await waitFor(() => tenant.list("v1", "ConfigMap", { namespace: ns }).then(() => true).catch(() => false), {
      description: "the reader's RoleBinding takes effect",
      timeoutMs: 15_000,
    });
    await configMap(ns, "app", { a: "1" }, { app: "x" });

    const cases: [Action, string, string][] = [
      [{ name: "p", patch: { target: { apiVersion: "v1", kind: "ConfigMap", name: "app" }, patch: "data: {a: '2'}" } }, "patch", `ConfigMap ${ns}/app`],
      [{ name: "p", patch: { target: { apiVersion: "v1", kind: "ConfigMap", selector: "app=x" }, type: "json6902", patch: "[{op: remove, path: /data/a}]" } }, "patch", `ConfigMap ${ns}/app`],
      [{ name: "d", delete: { target: { apiVersion: "v1", kind: "ConfigMap", name: "app" } } }, "delete", `ConfigMap ${ns}/app`],
      [{ name: "w", wait: { target: { apiVersion: "v1", kind: "Secret", name: "token" }, expr: "has(self.data)" } }, "get", `Secret ${ns}/token`],
      [{ name: "a", apply: { sourceRef: { name: "maintenance" } } }, "apply", `ConfigMap ${ns}/page`],
      [{ name: "j", job: { sourceRef: { name: "migrations" } } }, "get", `Job ${ns}/${jobName("migrate", "main@sha1:0001")}`],
      [{ name: "h", http: { url: "http://127.0.0.1:9/", headersFrom: [{ name: "hook", key: "Authorization" }] } }, "get", `Secret ${ns}/hook`],
    ];
    for (const [action, verb, object] of cases) {
      const manifests = action.apply ? "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: page}\ndata: {a: b}\n" : JOB("migrate");
      await assert.rejects(run(action, envFor(ns, tenant, { manifests })), (err: unknown) => {
        assert.ok(err instanceof ActionRBACDeniedError, `${action.name}: ${String(err)}`);
        assert.equal(err.reason, Reasons.RBACDenied);
        assert.equal(err.verb, verb);
        assert.equal(err.object, object);
        assert.match(err.message, new RegExp(`may not ${verb} ${object.replace(/[/.]/g, "\\$&")}: .*system:serviceaccount:${ns}:reader`));
        return true;
      });
    }
    assert.deepEqual((await admin.get(cmRef(ns, "app")))?.data, { a: "1" }, "nothing changed");
  });
});

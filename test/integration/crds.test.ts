// The generated CRDs against a real API server: they install, the server
// applies the same defaults as withDefaults(), and it refuses what the CEL
// rules forbid with messages that name the field and the fix — the same
// objects validateStageSet() refuses offline.
import assert from "node:assert/strict";
import { request, type RequestOptions } from "node:https";
import { before, describe, test } from "node:test";
import { ApiException, ApiextensionsV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { stageInventoryCrd, stageSetCrd } from "../../src/api/crds.js";
import { withDefaults } from "../../src/api/defaults.js";
import { Limits } from "../../src/api/schema.js";
import { GROUP, VERSION, type Action, type StageSet } from "../../src/api/types.js";
import { validateStageSet } from "../../src/api/validate.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { fullStageSet } from "../unit/api/fixtures.js";

const STAGESETS = "stagesets";

interface StatusCause {
  field?: string;
  message?: string;
  reason?: string;
}

let cluster: TestCluster;
let namespace: string;
let objects: CustomObjectsApi;
let nameCounter = 0;

before(async () => {
  cluster = await testCluster();
  namespace = await createTestNamespace(cluster, "crds");
  objects = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
});

function stageSet(mutate: (stageSet: StageSet) => void = () => {}): StageSet {
  const object = fullStageSet();
  object.metadata = { name: `stageset-${++nameCounter}`, namespace };
  mutate(object);
  return object;
}

async function create(body: object, plural = STAGESETS): Promise<Record<string, unknown>> {
  return (await objects.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, body })) as Record<
    string,
    unknown
  >;
}

/** Creates `body`, expects a 422, and returns the causes the API server listed. */
async function rejectionOf(body: object): Promise<{ message: string; causes: StatusCause[] }> {
  try {
    await create(body);
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    assert.equal(err.code, 422, `expected 422 Invalid, got ${err.code}: ${String(err.body)}`);
    const status = (typeof err.body === "string" ? JSON.parse(err.body) : err.body) as {
      message: string;
      details?: { causes?: StatusCause[] };
    };
    return { message: status.message, causes: status.details?.causes ?? [] };
  }
  assert.fail("the API server accepted an invalid StageSet");
}

/**
 * The API server refuses the mutated StageSet with a cause on `field` whose
 * message matches `message`, and validateStageSet refuses it too.
 */
async function assertRefused(mutate: (stageSet: StageSet) => void, field: string, message: RegExp): Promise<void> {
  const body = stageSet(mutate);
  const rejection = await rejectionOf(body);
  const cause = rejection.causes.find((c) => c.field === field);
  assert.ok(cause, `no cause on ${field} in: ${rejection.message}`);
  assert.match(cause.message ?? "", message);
  assert.ok(validateStageSet(body).length > 0, `validateStageSet accepted what the API server refused (${field})`);
}

describe("StageSet and StageInventory CRDs", () => {
  test("are installed unchanged, structural and Established", async () => {
    const api = cluster.kubeConfig.makeApiClient(ApiextensionsV1Api);
    for (const generated of [stageSetCrd(), stageInventoryCrd()]) {
      const name = generated.metadata.name;
      const crd = await api.readCustomResourceDefinition({ name });
      const conditions = crd.status?.conditions ?? [];
      assert.equal(conditions.find((c) => c.type === "Established")?.status, "True", `${name} is not Established`);
      assert.equal(conditions.find((c) => c.type === "NonStructuralSchema"), undefined, `${name} is not structural`);
      // Read raw: the typed client would rename `default` and the x-kubernetes-* keys.
      const live = (await getJson(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`)) as {
        spec: { versions: { schema: unknown; additionalPrinterColumns: unknown }[] };
      };
      assert.deepEqual(
        live.spec.versions[0]!.schema,
        generated.spec.versions[0]!.schema,
        `the live ${name} differs from config/crd: install the YAML as raw JSON ` +
          "(the typed @kubernetes/client-node API drops `default` and x-kubernetes-* keys outside list items)",
      );
      assert.deepEqual(live.spec.versions[0]!.additionalPrinterColumns, generated.spec.versions[0]!.additionalPrinterColumns);
    }
  });

  test("accept a StageSet that uses every part of the spec and apply the same defaults as withDefaults()", async () => {
    const body = stageSet();
    const created = await create(body);
    assert.deepEqual(created.spec, withDefaults(body.spec));
  });

  test("accept the smallest StageSet and default it", async () => {
    const body = { apiVersion: `${GROUP}/${VERSION}`, kind: "StageSet", metadata: { name: "minimal", namespace }, spec: { stages: [{ name: "app", sourceRef: { name: "my-app" } }] } };
    const created = await create(body);
    assert.deepEqual(created.spec, {
      timeout: "15m",
      suspend: false,
      rollbackOnFailure: false,
      windowScope: "Updates",
      stages: [{ name: "app", sourceRef: { kind: "ExternalArtifact", name: "my-app" }, path: "./", prune: true }],
    });
  });

  test("accept a StageSet at the list bounds within the CEL runtime budget", async () => {
    const body = stageSet((s) => {
      s.spec.version = { value: "1.0.0" };
      delete s.spec.migrations;
      s.spec.stages = Array.from({ length: Limits.stages }, (_, i) => ({
        name: `stage-${String(i).padStart(3, "0")}-${"x".repeat(Limits.stageNameLength - 10)}`,
        sourceRef: { name: "artifact" },
        actions: {
          pre: Array.from({ length: Limits.actionsPerList }, (_, j): Action => ({ name: `wait-${j}`, wait: { duration: "1s" } })),
        },
      }));
    });
    assert.deepEqual(validateStageSet(body), []);
    await create(body);
  });

  describe("refuse", () => {
    test("duplicate stage names", () =>
      assertRefused(
        (s) => (s.spec.stages[0]!.name = "application"),
        "spec.stages",
        /stage names must be unique within this list: rename one of the stages/,
      ));

    test("two version sources", () =>
      assertRefused((s) => (s.spec.version!.value = "2.1.0"), "spec.version", /set exactly one of value, fromObject or fromArtifact/));

    test("an action with two operations", () =>
      assertRefused(
        (s) => (s.spec.stages[1]!.actions!.post![0]!.wait = { duration: "5s" }),
        "spec.stages[1].actions.post[0]",
        /an action performs exactly one operation: set exactly one of job, http, wait, patch, delete, apply/,
      ));

    test("an action with two operations in a migration", () =>
      assertRefused(
        (s) => (s.spec.migrations![0]!.actions[0]!.http = { url: "https://example.com" }),
        "spec.migrations[0].actions[0]",
        /exactly one operation/,
      ));

    test("a window with both schedule and from", () =>
      assertRefused(
        (s) => (s.spec.updateWindows![0]!.from = "2026-12-24T00:00:00Z"),
        "spec.updateWindows[0]",
        /either recurring \(schedule and duration\) or absolute \(from and to\): set one of the two pairs/,
      ));

    test("a window that ends before it starts", () =>
      assertRefused((s) => (s.spec.updateWindows![1]!.to = "2026-12-23T00:00:00Z"), "spec.updateWindows[1].to", /ends before it starts/));

    test("duplicate action names in a list", () =>
      assertRefused(
        (s) => (s.spec.stages[1]!.actions!.pre![2]!.name = "db-migrate"),
        "spec.stages[1].actions.pre",
        /action names must be unique within this list: rename one of the actions/,
      ));

    test("a wait with a duration and a target", () =>
      assertRefused(
        (s) => (s.spec.stages[1]!.actions!.post![1]!.wait!.duration = "1m"),
        "spec.stages[1].actions.post[1].wait",
        /set duration, or set target and expr together/,
      ));

    test("a patch target with a name and a selector", () =>
      assertRefused(
        (s) => (s.spec.stages[1]!.actions!.post![2]!.patch!.target.selector = "app=web"),
        "spec.stages[1].actions.post[2].patch.target",
        /set target\.name or target\.selector, not both/,
      ));

    test("recreating a PersistentVolumeClaim without allowDataLoss", () =>
      assertRefused(
        (s) => delete s.spec.stages[0]!.conflictPolicy!.rules![1]!.allowDataLoss,
        "spec.stages[0].conflictPolicy.rules[1].allowDataLoss",
        /destroys its data: set allowDataLoss: true/,
      ));

    test("a stage name that is not a DNS-1123 label", () =>
      assertRefused((s) => (s.spec.stages[0]!.name = "Infra_1"), "spec.stages[0].name", /should match/));

    test("a malformed duration", () =>
      assertRefused((s) => (s.spec.stages[1]!.timeout = "20 minutes"), "spec.stages[1].timeout", /should match/));

    test("an empty migration target version", () =>
      assertRefused((s) => (s.spec.migrations![0]!.to = ""), "spec.migrations[0].to", /at least 1 chars long/));
  });

  test("print the first stage that is not Ready, the Ready condition and the version", async () => {
    const created = await create(stageSet());
    const name = (created.metadata as { name: string }).name;
    const withStatus = {
      ...created,
      status: {
        observedGeneration: 1,
        conditions: [
          {
            type: "Ready",
            status: "False",
            reason: "StageFailed",
            message: "stage application: apply failed",
            lastTransitionTime: "2026-01-01T00:00:00Z",
          },
        ],
        version: "2.1.0",
        stages: [
          { name: "infrastructure", phase: "Ready" },
          { name: "application", phase: "Failed" },
        ],
      },
    };
    await objects.replaceNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural: STAGESETS, name, body: withStatus });
    const table = await getTable(`/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${STAGESETS}/${name}`);
    const row = Object.fromEntries(table.columnDefinitions.map((column, i) => [column.name, table.rows[0]!.cells[i]]));
    assert.equal(row.Ready, "False");
    assert.equal(row.Reason, "StageFailed");
    assert.equal(row.Stages, "application");
    assert.equal(row.Version, "2.1.0");
    assert.ok(typeof row.Age === "string" && row.Age !== "");
  });

  test("store a StageInventory", async () => {
    const created = await create(
      {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "StageInventory",
        metadata: {
          name: "payments-app-0",
          namespace,
          labels: { [`${GROUP}/stage-set`]: "payments", [`${GROUP}/stage`]: "app", [`${GROUP}/shard`]: "0" },
        },
        spec: { stagePosition: 1, entries: [{ id: "payments_web_apps_Deployment", v: "v1" }, { id: "payments_web__Service", v: "v1" }] },
      },
      "stageinventories",
    );
    assert.deepEqual((created.spec as { entries: unknown[] }).entries.length, 2);
    const table = await getTable(`/apis/${GROUP}/${VERSION}/namespaces/${namespace}/stageinventories/payments-app-0`);
    assert.deepEqual(table.rows[0]!.cells.slice(0, 5), ["payments-app-0", "payments", "app", "0", 1]);
  });
});

interface Table {
  columnDefinitions: { name: string }[];
  rows: { cells: unknown[] }[];
}

/** GETs `path` as a server-side printed Table, the way kubectl get does. */
function getTable(path: string): Promise<Table> {
  return getJson(path, "application/json;as=Table;v=v1;g=meta.k8s.io") as Promise<Table>;
}

/** GETs `path` from the API server as plain JSON, bypassing the typed client's model mapping. */
async function getJson(path: string, accept = "application/json"): Promise<unknown> {
  const server = new URL(cluster.kubeConfig.getCurrentCluster()!.server);
  const options: RequestOptions = {
    hostname: server.hostname,
    port: server.port,
    path,
    method: "GET",
    headers: { Accept: accept },
  };
  await cluster.kubeConfig.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode !== 200) reject(new Error(`GET ${path} answered ${res.statusCode}: ${text}`));
        else resolve(JSON.parse(text));
      });
    });
    req.on("error", reject);
    req.end();
  });
}

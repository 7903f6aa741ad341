// Flux events against Flux's real notification-controller (v1.9.3, built by
// hack/tools.sh): the controller's EventRecorder with a FluxEventForwarder
// posts to its event endpoint, and a loopback HTTP server stands in for a
// `generic` Provider. The tests pin down what docs/flux-events.md tells an
// operator: what the Alert CRD admits, what is accepted, what is routed and
// what the Provider receives.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { KubeApiError } from "../../src/kube/errors.js";
import { EventRecorder } from "../../src/kube/events.js";
import { FluxEventForwarder, type FluxEvent } from "../../src/kube/flux-events.js";
import { createLogger } from "../../src/util/log.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";
import { ensureNotificationCrds, NotificationController } from "../support/notification-controller.js";
import { waitFor } from "../support/wait.js";

const ALERT_CRD = "alerts.notification.toolkit.fluxcd.io";
const KIND_ENUM_PATH = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/eventSources/items/properties/kind/enum";
/** What the v1.9.3 Alert CRD admits in spec.eventSources[].kind. */
const FLUX_KINDS = [
  "Bucket",
  "GitRepository",
  "Kustomization",
  "HelmRelease",
  "HelmChart",
  "HelmRepository",
  "ImageRepository",
  "ImagePolicy",
  "ImageUpdateAutomation",
  "OCIRepository",
  "ArtifactGenerator",
  "ExternalArtifact",
];

interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  event: FluxEvent;
}

let client: KubeClient;
let namespace: string;
let nc: NotificationController;
let provider: Server;
let providerUrl: string;
const delivered: Delivery[] = [];
const logLines: Record<string, unknown>[] = [];

/** A StageSet as the reconciler passes it to the recorder (it need not exist for events). */
function stageSet(name: string): KubeObject {
  return {
    apiVersion: "stages.metio.wtf/v1",
    kind: "StageSet",
    metadata: {
      name,
      namespace,
      uid: randomUUID(),
      resourceVersion: "42",
      annotations: { "event.toolkit.fluxcd.io/cluster": "test-cluster", "example.com/team": "not forwarded" },
    },
  };
}

function newRecorder(): { recorder: EventRecorder; forwarder: FluxEventForwarder } {
  const log = createLogger({
    level: "trace",
    encoding: "json",
    destination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString("utf8").split("\n")) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    }),
  });
  const forwarder = new FluxEventForwarder({ address: nc.eventsUrl, reportingInstance: "stageset-controller-test", log });
  return { recorder: new EventRecorder(client, { forwarder, reportingInstance: "stageset-controller-test" }), forwarder };
}

async function alertKindEnum(): Promise<string[]> {
  const crd = await client.get<KubeObject & { spec: { versions: { name: string; schema: { openAPIV3Schema: unknown } }[] } }>({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    name: ALERT_CRD,
  });
  assert.ok(crd, `CRD ${ALERT_CRD} not found`);
  assert.equal(crd.spec.versions[0]?.name, "v1beta3", "v1.9 serves Alerts as v1beta3 only");
  const kind = KIND_ENUM_PATH.split("/")
    .slice(1)
    .reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], crd);
  return kind as string[];
}

/** Puts the Alert CRD back as Flux ships it (a run that died mid-test may have left StageSet in the enum). */
async function restoreAlertCrd(): Promise<void> {
  const kinds = await alertKindEnum();
  if (!kinds.includes("StageSet")) return;
  await client.patch(
    { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name: ALERT_CRD },
    [
      { op: "test", path: KIND_ENUM_PATH, value: kinds },
      { op: "replace", path: KIND_ENUM_PATH, value: kinds.filter((k) => k !== "StageSet") },
    ],
    "json",
  );
}

function alert(name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: "notification.toolkit.fluxcd.io/v1beta3", kind: "Alert", metadata: { name, namespace }, spec };
}

function genericProvider(name: string, path: string): KubeObject {
  return { apiVersion: "notification.toolkit.fluxcd.io/v1beta3", kind: "Provider", metadata: { name, namespace }, spec: { type: "generic", address: `${providerUrl}${path}` } };
}

before(async () => {
  const cluster = await testCluster();
  client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  namespace = await createTestNamespace(cluster, "flux-events");
  await ensureNotificationCrds(client);
  await restoreAlertCrd();
  provider = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      delivered.push({ path: req.url ?? "", headers: req.headers, event: JSON.parse(Buffer.concat(chunks).toString("utf8")) as FluxEvent });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => provider.listen(0, "127.0.0.1", resolve));
  providerUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`;
  nc = new NotificationController({ kubeconfigPath: cluster.kubeconfigPath });
  await nc.start();
});

after(async () => {
  await restoreAlertCrd().catch(() => undefined);
  await nc?.stop();
  await new Promise<void>((resolve) => (provider ? provider.close(() => resolve()) : resolve()));
  client?.close();
});

describe("Flux events through the real notification-controller", () => {
  test("the Alert CRD (v1.9.3) refuses eventSources kind StageSet", async () => {
    assert.deepEqual(await alertKindEnum(), FLUX_KINDS);
    await client.create(genericProvider("webhook", "/all"));
    const err = await client
      .create(alert("stagesets", { providerRef: { name: "webhook" }, eventSeverity: "info", eventSources: [{ kind: "StageSet", name: "*" }] }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(err instanceof KubeApiError, `expected the API server to refuse the Alert, got ${String(err)}`);
    assert.equal(err.status, 422);
    assert.equal(
      err.serverMessage,
      `Alert.notification.toolkit.fluxcd.io "stagesets" is invalid: spec.eventSources[0].kind: Unsupported value: "StageSet": supported values: ${FLUX_KINDS.map((k) => `"${k}"`).join(", ")}`,
    );
  });

  test("unpatched: notification-controller answers 202 and discards a StageSet event; an Alert on Flux kinds does not match it", async () => {
    await client.create(
      alert("flux-kinds", {
        providerRef: { name: "webhook" },
        eventSeverity: "info",
        eventSources: [
          { kind: "Kustomization", name: "*" },
          { kind: "ExternalArtifact", name: "*" },
        ],
      }),
    );
    const { recorder, forwarder } = newRecorder();
    const subject = stageSet("unrouted");
    recorder.warning(subject, "StageFailed", 'stage "app" failed: unrouted', { revision: "main@sha1:1111" });
    await recorder.close();
    assert.deepEqual(forwarder.stats(), { delivered: 1, duplicates: 0, failed: 0, dropped: 0, retries: 0 });
    const answer = logLines.find((l) => l.msg === "Flux event delivered" && l.object === `StageSet/${namespace}/unrouted`);
    assert.equal(answer?.status, 202, "the event endpoint accepted it");
    const discarded = await nc.whenLogged(
      (l) => l.msg === "discarding event, no alerts found for the involved object" && (l.eventInvolvedObject as { name?: string } | undefined)?.name === "unrouted",
      "the StageSet event discarded",
    );
    assert.deepEqual(discarded.eventInvolvedObject, { kind: "StageSet", namespace, name: "unrouted", uid: subject.metadata.uid, apiVersion: "stages.metio.wtf/v1", resourceVersion: "42" });
    assert.equal(
      delivered.filter((d) => d.event.involvedObject.name === "unrouted").length,
      0,
      "nothing reached the Provider",
    );
    // The Kubernetes Event is written as before.
    const events = await client.list<KubeObject & { reason: string }>("v1", "Event", { namespace, fieldSelector: "involvedObject.name=unrouted" });
    assert.deepEqual(
      events.items.map((e) => e.reason),
      ["StageFailed"],
    );
  });

  test("with StageSet added to the Alert CRD's kind enum (Flux's documented patch for third-party kinds), Alerts route StageSet events to a generic Provider", async () => {
    try {
      await client.patch(
        { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name: ALERT_CRD },
        [{ op: "add", path: `${KIND_ENUM_PATH}/-`, value: "StageSet" }],
        "json",
      );
      await client.create(genericProvider("errors-only", "/errors"));
      // The API server validates with the new schema a moment after the CRD update.
      await waitFor(
        () => client.create(alert("stagesets", { providerRef: { name: "webhook" }, eventSeverity: "info", eventSources: [{ kind: "StageSet", name: "*" }] })),
        { description: "the Alert on kind StageSet admitted", timeoutMs: 30_000, intervalMs: 200 },
      );
      await client.create(alert("shop-errors", { providerRef: { name: "errors-only" }, eventSeverity: "error", eventSources: [{ kind: "StageSet", name: "shop" }] }));

      /** Posts an error event about StageSet shop straight to notification-controller (not through our forwarder). */
      const postRawEvent = async (message: string, reason: string) => {
        const res = await fetch(nc.eventsUrl, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            involvedObject: { apiVersion: "stages.metio.wtf/v1", kind: "StageSet", namespace, name: "shop" },
            severity: "error",
            timestamp: new Date().toISOString(),
            message,
            reason,
            reportingController: "probe",
          }),
        });
        await res.arrayBuffer();
      };

      // notification-controller reads Alerts from its cache: probe until it routes to both.
      let probe = 0;
      await waitFor(
        async () => {
          const message = `probe ${++probe}`;
          await postRawEvent(message, "Probe");
          const routed = () => {
            const paths = delivered.filter((d) => d.event.message === message).map((d) => d.path);
            return paths.includes("/all") && paths.includes("/errors");
          };
          // Until the Alerts are loaded a probe is discarded: give each one a second to arrive, then send another.
          return waitFor(routed, { description: `${message} delivered`, timeoutMs: 1_000, intervalMs: 20 }).then(
            () => true,
            () => false,
          );
        },
        { description: "notification-controller routing StageSet events through both Alerts", timeoutMs: 60_000, intervalMs: 0 },
      );
      // Late deliveries of earlier probes may still arrive: only the recorder's events count below.
      const ours = () => delivered.filter((d) => d.event.reportingController === "stageset-controller");
      // A barrier instead of a timer: an event posted after the ones under test, awaited until dispatched, so
      // anything sent before it has had its turn (notification-controller answered those requests already).
      let barriers = 0;
      const barrier = async () => {
        const message = `barrier ${++barriers}`;
        await postRawEvent(message, "Barrier");
        await waitFor(() => delivered.some((d) => d.event.message === message && d.path === "/all"), { description: `${message} dispatched`, timeoutMs: 30_000 });
      };

      const { recorder, forwarder } = newRecorder();
      const shop = stageSet("shop");
      recorder.normal(shop, "Succeeded", "all 3 stages Ready", { revision: "main@sha1:2222" });
      recorder.warning(shop, "StageFailed", 'stage "db" failed: timed out', { revision: "main@sha1:3333" });
      recorder.warning(stageSet("other"), "StageFailed", 'stage "web" failed', { revision: "v1.2.3" });
      await recorder.flush();
      assert.deepEqual(forwarder.stats(), { delivered: 3, duplicates: 0, failed: 0, dropped: 0, retries: 0 });
      await waitFor(() => ours().length >= 4, { description: "4 notifications at the Provider", timeoutMs: 30_000 });
      await barrier(); // and no more
      const seen = ours().map((d) => `${d.path} ${d.event.involvedObject.name} ${d.event.reason} ${d.event.severity}`).sort();
      assert.deepEqual(seen, ["/all other StageFailed error", "/all shop StageFailed error", "/all shop Succeeded info", "/errors shop StageFailed error"]);

      const succeeded = ours().find((d) => d.event.reason === "Succeeded")!;
      assert.equal(succeeded.headers["gotk-component"], "stageset-controller");
      assert.deepEqual(succeeded.event, {
        involvedObject: { apiVersion: "stages.metio.wtf/v1", kind: "StageSet", namespace, name: "shop", uid: shop.metadata.uid, resourceVersion: "42" },
        severity: "info",
        timestamp: succeeded.event.timestamp,
        message: "all 3 stages Ready",
        reason: "Succeeded",
        // The group prefix (stages.metio.wtf/, event.toolkit.fluxcd.io/) is stripped for the Provider.
        metadata: { revision: "main@sha1:2222", cluster: "test-cluster" },
        reportingController: "stageset-controller",
        reportingInstance: "stageset-controller-test",
      });
      assert.match(succeeded.event.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

      // The same event again (object, message, revision) inside --rate-limit-interval: 429, not dispatched.
      recorder.normal(shop, "Succeeded", "all 3 stages Ready", { revision: "main@sha1:2222" });
      await recorder.close();
      assert.equal(forwarder.stats().duplicates, 1);
      await barrier();
      assert.equal(ours().length, 4, "the duplicate was not dispatched");
    } finally {
      await restoreAlertCrd();
    }
  });
});

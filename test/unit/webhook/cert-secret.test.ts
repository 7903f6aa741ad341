// The self-signed mode without a cluster: the renewal plan, the Secret's
// create-or-adopt with optimistic concurrency, and the rotation loop on a
// FakeClock against an in-memory API (get/create/update/strategic patch with
// resourceVersions, AlreadyExists and Conflict like the API server's).
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import type { KubeObject } from "../../../src/api/types.js";
import type { ObjectRef, PatchType } from "../../../src/kube/client.js";
import { KubeApiError } from "../../../src/kube/errors.js";
import { silentLogger } from "../../../src/util/log.js";
import { ensureCaBundle, WebhookConfigurationMissingError } from "../../../src/webhook/ca-bundle.js";
import {
  decodeCertSecret,
  planCertSecret,
  renewBeforeExpiryMs,
  SecretKeys,
  syncCertSecret,
  type CertPlanOptions,
  type CertSecretData,
} from "../../../src/webhook/cert-secret.js";
import { splitPemBundle, validityOf } from "../../../src/webhook/certs.js";
import { startSelfSigned } from "../../../src/webhook/self-signed.js";
import type { ServingCertificate } from "../../../src/webhook/server.js";
import { FakeClock } from "../../support/fake-clock.js";

const HOUR = 3_600_000;
const V = 90 * HOUR;
const START = Date.UTC(2024, 0, 1);
const names = { dnsNames: ["hook.ns.svc", "hook.ns.svc.cluster.local", "hook.ns", "hook"], ipAddresses: ["127.0.0.1"] };
const opts = (now: number, extra: Partial<CertPlanOptions> = {}): CertPlanOptions => ({ now, validityMs: V, names, ...extra });
const serial = (pem: string) => new X509Certificate(pem).serialNumber;
const bundleSerials = (data: CertSecretData) => splitPemBundle(data.caBundlePem).map(serial);

type Verb = "get" | "create" | "update" | "patch";

/** An in-memory API server for Secrets and ValidatingWebhookConfigurations. */
class FakeApi {
  readonly objects = new Map<string, KubeObject>();
  readonly calls: string[] = [];
  #rv = 0;
  /** Runs before a request is served; may throw to fail it or change state to simulate another writer. */
  before?: (verb: Verb, ref: ObjectRef) => void | Promise<void>;

  key(ref: { kind: string; namespace?: string; name: string }): string {
    return `${ref.kind}/${ref.kind === "Secret" ? ref.namespace : ""}/${ref.name}`;
  }

  put(obj: KubeObject): KubeObject {
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.#rv);
    this.objects.set(this.key({ kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name! }), stored);
    return structuredClone(stored);
  }

  async get<T extends KubeObject = KubeObject>(ref: ObjectRef): Promise<T | undefined> {
    this.calls.push(`get ${ref.kind}`);
    await this.before?.("get", ref);
    const obj = this.objects.get(this.key(ref));
    return obj ? (structuredClone(obj) as T) : undefined;
  }

  async create<T extends KubeObject = KubeObject>(obj: KubeObject): Promise<T> {
    const ref = { apiVersion: obj.apiVersion, kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name! };
    this.calls.push(`create ${obj.kind}`);
    await this.before?.("create", ref);
    if (this.objects.has(this.key(ref))) throw apiError(409, "AlreadyExists", "create");
    return this.put(obj) as T;
  }

  async update<T extends KubeObject = KubeObject>(obj: KubeObject): Promise<T> {
    const ref = { apiVersion: obj.apiVersion, kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name! };
    this.calls.push(`update ${obj.kind}`);
    await this.before?.("update", ref);
    const live = this.objects.get(this.key(ref));
    if (!live) throw apiError(404, "NotFound", "update");
    if (live.metadata.resourceVersion !== obj.metadata.resourceVersion) throw apiError(409, "Conflict", "update");
    return this.put(obj) as T;
  }

  async patch<T extends KubeObject = KubeObject>(ref: ObjectRef, body: unknown, type: PatchType): Promise<T> {
    this.calls.push(`patch ${ref.kind}`);
    await this.before?.("patch", ref);
    assert.equal(type, "strategic");
    const live = this.objects.get(this.key(ref));
    if (!live) throw apiError(404, "NotFound", "patch");
    const webhooks = live.webhooks as { name: string; clientConfig: { caBundle?: string } }[];
    for (const change of (body as { webhooks: { name: string; clientConfig: { caBundle: string } }[] }).webhooks) {
      const webhook = webhooks.find((w) => w.name === change.name);
      assert.ok(webhook, `patch names webhook ${change.name} that does not exist`);
      webhook.clientConfig.caBundle = change.clientConfig.caBundle;
    }
    return this.put(live) as T;
  }

  secret(): KubeObject | undefined {
    return this.objects.get(this.key({ kind: "Secret", namespace: "ctrl", name: "hook-self-signed-tls" }));
  }

  caBundles(): string[] {
    const config = this.objects.get(this.key({ kind: "ValidatingWebhookConfiguration", name: "hooks" }));
    return ((config?.webhooks ?? []) as { clientConfig: { caBundle?: string } }[]).map((w) => Buffer.from(w.clientConfig.caBundle ?? "", "base64").toString("utf8"));
  }
}

function apiError(status: number, reason: string, operation: string): KubeApiError {
  return new KubeApiError({ status, reason, serverMessage: reason, operation });
}

function withWebhookConfiguration(api: FakeApi): FakeApi {
  api.put({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: "hooks" },
    webhooks: [
      { name: "a.stages.metio.wtf", clientConfig: {} },
      { name: "b.stages.metio.wtf", clientConfig: {} },
    ],
  });
  return api;
}

const REF = { namespace: "ctrl", name: "hook-self-signed-tls" };

describe("planCertSecret", () => {
  it("starts with a CA, a next CA and a serving certificate the CA signed; the bundle trusts both CAs", async () => {
    const plan = await planCertSecret(undefined, opts(START));
    assert.ok(plan);
    const { data } = plan;
    const servingCert = new X509Certificate(data.serving.certPem);
    assert.ok(servingCert.checkIssued(new X509Certificate(data.ca.certPem)));
    assert.deepEqual(bundleSerials(data), [serial(data.ca.certPem), serial(data.nextCa.certPem)]);
    assert.equal(validityOf(servingCert).notAfter, START + V);
    assert.equal(validityOf(new X509Certificate(data.ca.certPem)).notAfter, START + 2 * V);
    assert.equal(await planCertSecret(data, opts(START)), undefined, "a fresh Secret is left alone");
  });

  it("renews at a third of the validity: the next CA signs, the old CA stays trusted, a new next CA joins", async () => {
    const first = (await planCertSecret(undefined, opts(START)))!.data;
    const dueAt = validityOf(new X509Certificate(first.serving.certPem)).notAfter - renewBeforeExpiryMs(V);
    assert.equal(dueAt, START + V / 3);
    assert.equal(await planCertSecret(first, opts(dueAt - 1000)), undefined);
    const plan = await planCertSecret(first, opts(dueAt));
    assert.match(plan!.reason, /due for renewal/);
    const second = plan!.data;
    assert.equal(serial(second.ca.certPem), serial(first.nextCa.certPem), "the next CA was promoted");
    assert.equal(second.previousCaPem, first.ca.certPem);
    assert.ok(new X509Certificate(second.serving.certPem).checkIssued(new X509Certificate(second.ca.certPem)));
    assert.deepEqual(bundleSerials(second), [serial(first.ca.certPem), serial(first.nextCa.certPem), serial(second.nextCa.certPem)]);
    // The new certificate's CA was already in the bundle before the rotation.
    assert.ok(bundleSerials(first).includes(serial(second.ca.certPem)));
  });

  it("reissues with the same CA when the names change", async () => {
    const first = (await planCertSecret(undefined, opts(START)))!.data;
    const plan = await planCertSecret(first, opts(START, { names: { ...names, dnsNames: [...names.dnsNames, "extra.example"] } }));
    assert.match(plan!.reason, /lacks some of the webhook's names/);
    assert.equal(plan!.data.ca.certPem, first.ca.certPem);
    assert.equal(plan!.data.caBundlePem, first.caBundlePem);
    assert.notEqual(serial(plan!.data.serving.certPem), serial(first.serving.certPem));
  });

  it("starts over from a broken CA, still trusting the old CA while it is valid", async () => {
    const first = (await planCertSecret(undefined, opts(START)))!.data;
    const broken = { ...first, ca: { certPem: first.ca.certPem, keyPem: first.nextCa.keyPem } };
    const plan = await planCertSecret(broken, opts(START));
    assert.match(plan!.reason, /CA is missing, invalid or expired/);
    assert.equal(plan!.data.previousCaPem, first.ca.certPem);
    assert.equal(splitPemBundle(plan!.data.caBundlePem).length, 3);
  });

  it("decodes what it encodes, and a Secret without the serving pair is unusable", async () => {
    const api = new FakeApi();
    const state = await syncCertSecret(api, REF, () => opts(START));
    const decoded = decodeCertSecret(api.secret()!);
    assert.deepEqual(decoded, state.data);
    assert.deepEqual(Object.keys(api.secret()!.data as object).sort(), [SecretKeys.caBundle, SecretKeys.caCert, SecretKeys.caKey, SecretKeys.nextCaCert, SecretKeys.nextCaKey, SecretKeys.servingCert, SecretKeys.servingKey].sort());
    assert.equal(api.secret()!.type, "kubernetes.io/tls");
    assert.equal(decodeCertSecret({ apiVersion: "v1", kind: "Secret", metadata: {}, data: {} }), undefined);
  });
});

describe("syncCertSecret", () => {
  it("creates the Secret once, then adopts it without writing", async () => {
    const api = new FakeApi();
    const created = await syncCertSecret(api, REF, () => opts(START));
    assert.equal(created.wrote?.action, "created");
    const again = await syncCertSecret(api, REF, () => opts(START));
    assert.equal(again.wrote, undefined);
    assert.equal(again.data.serving.certPem, created.data.serving.certPem);
    assert.deepEqual(api.calls, ["get Secret", "create Secret", "get Secret"]);
  });

  it("adopts the Secret another replica created first (AlreadyExists)", async () => {
    const api = new FakeApi();
    const winner = (await planCertSecret(undefined, opts(START)))!.data;
    api.before = async (verb) => {
      if (verb !== "create") return;
      api.before = undefined;
      // The other replica's create lands between our read and our create.
      await syncCertSecret({ get: async () => undefined, create: (o) => api.create(o), update: (o) => api.update(o) }, REF, () => opts(START), async () => ({ data: winner, reason: "other" }));
    };
    const state = await syncCertSecret(api, REF, () => opts(START));
    assert.equal(state.wrote, undefined, "adopted, not written");
    assert.equal(state.data.serving.certPem, winner.serving.certPem);
    assert.deepEqual(api.calls, ["get Secret", "create Secret", "create Secret", "get Secret"]);
  });

  it("on a Conflict during renewal, reads again and adopts the winner's renewal", async () => {
    const api = new FakeApi();
    const first = await syncCertSecret(api, REF, () => opts(START));
    const due = START + V / 3;
    const winners = (await planCertSecret(first.data, opts(due)))!.data;
    api.before = (verb) => {
      if (verb !== "update") return;
      api.before = undefined;
      const live = api.secret()!;
      api.put({ ...live, data: { ...(live.data as object), [SecretKeys.servingCert]: Buffer.from(winners.serving.certPem).toString("base64"), [SecretKeys.servingKey]: Buffer.from(winners.serving.keyPem).toString("base64"), [SecretKeys.caCert]: Buffer.from(winners.ca.certPem).toString("base64"), [SecretKeys.caKey]: Buffer.from(winners.ca.keyPem).toString("base64"), [SecretKeys.nextCaCert]: Buffer.from(winners.nextCa.certPem).toString("base64"), [SecretKeys.nextCaKey]: Buffer.from(winners.nextCa.keyPem).toString("base64"), [SecretKeys.previousCaCert]: Buffer.from(winners.previousCaPem!).toString("base64"), [SecretKeys.caBundle]: Buffer.from(winners.caBundlePem).toString("base64") } });
    };
    const state = await syncCertSecret(api, REF, () => opts(due));
    assert.equal(state.wrote, undefined);
    assert.equal(state.data.serving.certPem, winners.serving.certPem);
    assert.deepEqual(api.calls.slice(-3), ["get Secret", "update Secret", "get Secret"]);
  });

  it("throws what the API server answered otherwise", async () => {
    const api = new FakeApi();
    api.before = () => {
      throw apiError(403, "Forbidden", "get secrets");
    };
    await assert.rejects(syncCertSecret(api, REF, () => opts(START)), /Forbidden/);
  });
});

describe("ensureCaBundle", () => {
  it("patches every webhook whose bundle differs, and nothing when all match", async () => {
    const api = withWebhookConfiguration(new FakeApi());
    assert.deepEqual(await ensureCaBundle(api, "hooks", "PEM-1"), ["a.stages.metio.wtf", "b.stages.metio.wtf"]);
    assert.deepEqual(api.caBundles(), ["PEM-1", "PEM-1"]);
    api.calls.length = 0;
    assert.deepEqual(await ensureCaBundle(api, "hooks", "PEM-1"), []);
    assert.deepEqual(api.calls, ["get ValidatingWebhookConfiguration"]);
    await assert.rejects(ensureCaBundle(api, "missing", "PEM-1"), WebhookConfigurationMissingError);
  });
});

describe("self-signed loop on a FakeClock", () => {
  function start(api: FakeApi, clock: FakeClock, failures: unknown[] = []) {
    const served: ServingCertificate[] = [];
    const provisioner = startSelfSigned({
      client: api,
      secretNamespace: REF.namespace,
      secretName: REF.name,
      validatingConfigName: "hooks",
      names,
      validityMs: V,
      clock,
      log: silentLogger(),
      serve: (c) => void served.push(c),
      serving: () => served.length > 0,
      onFailure: (err) => void failures.push(err),
      pollIntervalMs: 10 * 60_000,
    });
    return { provisioner, served };
  }

  it("serves, patches the bundle, and rotates a third into the validity without a real sleep", async () => {
    const api = withWebhookConfiguration(new FakeApi());
    const clock = new FakeClock({ start: START });
    const { provisioner, served } = start(api, clock);
    await provisioner.synced;
    await clock.whenSleeping(1);
    assert.equal(served.length, 1);
    const first = decodeCertSecret(api.secret()!)!;
    assert.equal(served[0]!.certPem, first.serving.certPem);
    assert.deepEqual(api.caBundles(), [first.caBundlePem, first.caBundlePem]);

    // Polls every 10 minutes until just before the renewal: nothing changes.
    await clock.run(V / 3 - 60_000, 1);
    assert.equal(served.length, 1);
    assert.equal(decodeCertSecret(api.secret()!)!.serving.certPem, first.serving.certPem);

    await clock.run(60_000, 1);
    assert.equal(served.length, 2, "rotated at a third of the validity");
    const second = decodeCertSecret(api.secret()!)!;
    assert.equal(served[1]!.certPem, second.serving.certPem);
    assert.equal(serial(second.ca.certPem), serial(first.nextCa.certPem));
    assert.deepEqual(api.caBundles(), [second.caBundlePem, second.caBundlePem]);
    assert.equal(validityOf(new X509Certificate(second.serving.certPem)).notAfter, START + V / 3 + V);
    await provisioner.stop();
  });

  it("a replica picks up another replica's rotation at its next poll; they never write the same renewal twice", async () => {
    const api = withWebhookConfiguration(new FakeApi());
    const clock = new FakeClock({ start: START });
    const a = start(api, clock);
    const b = start(api, clock);
    await Promise.all([a.provisioner.synced, b.provisioner.synced]);
    await clock.whenSleeping(2);
    assert.equal(a.served[0]!.certPem, b.served[0]!.certPem, "one certificate for both");
    assert.equal(api.calls.filter((c) => c === "create Secret").length, 2, "both tried to create; one adopted");

    await clock.run(V / 3 + 10 * 60_000, 2);
    assert.equal(a.served.length, 2);
    assert.equal(b.served.length, 2);
    assert.equal(a.served[1]!.certPem, b.served[1]!.certPem);
    assert.equal(a.served[1]!.certPem, decodeCertSecret(api.secret()!)!.serving.certPem);
    await Promise.all([a.provisioner.stop(), b.provisioner.stop()]);
  });

  it("a failed renewal is counted and retried with backoff while the old certificate keeps serving", async () => {
    const api = withWebhookConfiguration(new FakeApi());
    const clock = new FakeClock({ start: START });
    const failures: unknown[] = [];
    const { provisioner, served } = start(api, clock, failures);
    await provisioner.synced;
    await clock.whenSleeping(1);

    let refuse = true;
    api.before = (verb, ref) => {
      if (refuse && verb === "update" && ref.kind === "Secret") throw apiError(500, "InternalError", "update secrets");
    };
    await clock.run(V / 3 + 3_000, 1);
    assert.equal(failures.length, 3, "failed at the renewal time, 1 s and 3 s later");
    assert.deepEqual(clock.sleeps.slice(-3), [1_000, 2_000, 4_000], "backoff doubles");
    assert.equal(served.length, 1, "the old certificate keeps serving");

    refuse = false;
    await clock.run(8_000, 1);
    assert.equal(served.length, 2, "renewed once the API server accepts the update");
    await provisioner.stop();
  });
});

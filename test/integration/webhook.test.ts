// The validating webhook called by a real kube-apiserver. Each test registers
// its own ValidatingWebhookConfiguration (cluster-scoped, unique name,
// deleted afterwards) whose namespaceSelector matches only the test's
// namespace (`kubernetes.io/metadata.name`, which the API server sets on every
// namespace), so tests running in parallel never meet it. The webhook is
// registered by URL (https://127.0.0.1:<port>), with the self-signed mode's
// CA bundle, or with a test CA in cert-manager mode.
//
// Certificate time runs on a FakeClock that starts at the real time: the API
// server checks certificates against its own clock, and every certificate is
// valid from an hour before it is made, so a rotation a fake half hour ahead
// still yields a certificate the API server accepts.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { after, before, describe, test } from "node:test";
import type { KubeObject, StageSet } from "../../src/api/types.js";
import type { WebhookConfig } from "../../src/config/flags.js";
import { KubeClient } from "../../src/kube/client.js";
import { KubeApiError } from "../../src/kube/errors.js";
import { silentLogger } from "../../src/util/log.js";
import { createCa, issueServingCert, splitPemBundle, type PemKeyPair } from "../../src/webhook/certs.js";
import { decodeCertSecret } from "../../src/webhook/cert-secret.js";
import { ADMISSION_PATH, defaultSecretName, startWebhook, type WebhookHandle } from "../../src/webhook/index.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { FakeClock } from "../support/fake-clock.js";
import { waitFor } from "../support/wait.js";
import { fullStageSet } from "../unit/api/fixtures.js";

const MINUTE = 60_000;
const VALIDITY = 90 * MINUTE;
const POLL = 5 * MINUTE;

let cluster: TestCluster;
let client: KubeClient;

before(async () => {
  cluster = await testCluster();
  client = KubeClient.fromKubeConfig(cluster.kubeConfig);
});
after(() => client.close());

function webhookConfig(namespace: string, overrides: Partial<WebhookConfig> = {}): WebhookConfig {
  return {
    enabled: true,
    certMode: "self-signed",
    certDir: "",
    port: 0,
    certValidityMs: VALIDITY,
    serviceName: "stageset-webhook",
    serviceNamespace: namespace,
    validatingConfigName: `stageset-webhook-test-${namespace}`,
    ...overrides,
  };
}

/**
 * Registers a ValidatingWebhookConfiguration for StageSet CREATE/UPDATE in
 * `namespace` only, one webhook per port, the chart's settings otherwise.
 * Returns its webhook names.
 */
async function registerWebhooks(name: string, namespace: string, ports: number[], caBundle?: string): Promise<string[]> {
  const names = ports.map((_, i) => `v${i}.stagesets.stages.metio.wtf`);
  await client.create({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name, labels: { "stageset-test": "true" } },
    webhooks: ports.map((port, i) => ({
      name: names[i],
      clientConfig: { url: `https://127.0.0.1:${port}${ADMISSION_PATH}`, ...(caBundle ? { caBundle: Buffer.from(caBundle).toString("base64") } : {}) },
      rules: [{ apiGroups: ["stages.metio.wtf"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["stagesets"], scope: "Namespaced" }],
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
      failurePolicy: "Fail",
      sideEffects: "None",
      admissionReviewVersions: ["v1"],
      timeoutSeconds: 5,
    })),
  });
  return names;
}

/** Points the webhooks at the replicas' ports (a strategic merge by webhook name keeps the patched caBundle). */
async function pointAt(name: string, webhooks: string[], ports: number[]): Promise<void> {
  await client.patch(
    { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingWebhookConfiguration", name },
    { webhooks: webhooks.map((webhook, i) => ({ name: webhook, clientConfig: { url: `https://127.0.0.1:${ports[i]}${ADMISSION_PATH}` } })) },
    "strategic",
  );
}

/** Port 1 refuses connections: a webhook registered before its server has a port. */
const NOT_YET = 1;

async function unregister(name: string): Promise<void> {
  await client.delete({ apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingWebhookConfiguration", name });
}

async function caBundles(name: string): Promise<string[]> {
  const config = await client.get<KubeObject & { webhooks: { clientConfig: { caBundle?: string } }[] }>({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    name,
  });
  return (config?.webhooks ?? []).map((w) => Buffer.from(w.clientConfig.caBundle ?? "", "base64").toString("utf8"));
}

let counter = 0;
function stageSet(namespace: string, mutate: (s: StageSet) => void = () => {}): StageSet {
  const obj = fullStageSet();
  obj.metadata = { name: `ss-${++counter}`, namespace };
  mutate(obj);
  return obj;
}

const breakMigration = (s: StageSet) => void (s.spec.migrations![0]!.stage = "no-such-stage");

/** Creates `obj` and returns the API server's refusal. */
async function refusal(obj: KubeObject, dryRun = false): Promise<KubeApiError> {
  try {
    await client.create(obj, { dryRun });
  } catch (err) {
    if (err instanceof KubeApiError) return err;
    throw err;
  }
  assert.fail(`the API server accepted ${obj.metadata.name}`);
}

/** The webhook configuration reaches the API server through a watch: wait until a dry-run create gets through it. */
async function untilAdmitting(namespace: string): Promise<void> {
  await waitFor(async () => (await client.create(stageSet(namespace), { dryRun: true }), true), {
    description: "the API server admitting StageSets through the webhook",
    timeoutMs: 30_000,
    intervalMs: 100,
  });
}

/** The serial of the certificate a new TLS connection to `port` gets. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const serial = socket.getPeerX509Certificate()?.serialNumber ?? "";
      socket.end();
      resolve(serial);
    });
    socket.on("error", reject);
  });
}

/** Refused by one of `webhooks` (validating webhooks run in parallel: the API server reports the first denial) on `field`. */
function assertDeniedOn(err: KubeApiError, webhooks: string | string[], field: string): void {
  assert.equal(err.status, 422, err.message);
  assert.equal(err.statusReason, "Invalid");
  const names = (Array.isArray(webhooks) ? webhooks : [webhooks]).map((w) => w.replace(/\./g, "\\.")).join("|");
  assert.match(err.serverMessage, new RegExp(`^admission webhook "(${names})" denied the request: StageSet\\.stages\\.metio\\.wtf "ss-\\d+" is invalid: `));
  assert.ok(err.serverMessage.includes(field), err.serverMessage);
  assert.ok(err.causes.some((c) => c.field === field), JSON.stringify(err.causes));
}

describe("admission webhook, self-signed mode", () => {
  test("refuses an invalid StageSet naming the field, admits a valid one, refuses an UPDATE that breaks it; with the webhook down, creates fail naming it", async () => {
    const namespace = await createTestNamespace(cluster, "webhook");
    const config = webhookConfig(namespace);
    const clock = new FakeClock({ start: Date.now() });
    // The configuration exists before the webhook starts (the chart installs both); its URL gets the port once known.
    const [name] = await registerWebhooks(config.validatingConfigName, namespace, [NOT_YET]);
    let webhook: WebhookHandle | undefined;
    try {
      webhook = await startWebhook({ config, client, namespace, log: silentLogger(), clock, host: "127.0.0.1", extraSans: ["127.0.0.1"], pollIntervalMs: POLL });
      await pointAt(config.validatingConfigName, [name!], [webhook.port]);
      await webhook.whenReady();
      const secret = await waitFor(() => client.get({ apiVersion: "v1", kind: "Secret", namespace, name: defaultSecretName(config.serviceName) }), {
        description: "the webhook's Secret",
        timeoutMs: 30_000,
      });
      const bundle = decodeCertSecret(secret)!.caBundlePem;
      await waitFor(async () => (await caBundles(config.validatingConfigName)).every((b) => b === bundle), {
        description: "the CA bundle patched into the webhook configuration",
        timeoutMs: 30_000,
      });
      await untilAdmitting(namespace);

      assertDeniedOn(await refusal(stageSet(namespace, breakMigration)), name!, "spec.migrations[0].stage");

      const created = await client.create(stageSet(namespace));
      const broken = structuredClone(created) as StageSet;
      breakMigration(broken);
      let updateError: unknown;
      await client.update(broken).catch((err: unknown) => (updateError = err));
      assert.ok(updateError instanceof KubeApiError, "the UPDATE was refused");
      assertDeniedOn(updateError, name!, "spec.migrations[0].stage");
      // An UPDATE that leaves the spec alone goes through.
      await client.update({ ...created, metadata: { ...created.metadata, labels: { touched: "yes" } } });

      // failurePolicy Fail: with the webhook gone, StageSets cannot be created or changed.
      await webhook.close();
      const down = await refusal(stageSet(namespace));
      assert.equal(down.status, 500, down.message);
      assert.match(down.serverMessage, new RegExp(`failed calling webhook "${name!.replace(/\./g, "\\.")}"`));
    } finally {
      await webhook?.close();
      await unregister(config.validatingConfigName);
    }
  });

  test("two replicas agree on one Secret and one CA bundle, and keep admitting across a rotation", async () => {
    const namespace = await createTestNamespace(cluster, "webhook-ha");
    const config = webhookConfig(namespace);
    const clock = new FakeClock({ start: Date.now() });
    const start = () => startWebhook({ config, client, namespace, log: silentLogger(), clock, host: "127.0.0.1", extraSans: ["127.0.0.1"], pollIntervalMs: POLL });
    const replicas: WebhookHandle[] = [];
    // One webhook per replica, so every admission goes through both.
    const names = await registerWebhooks(config.validatingConfigName, namespace, [NOT_YET, NOT_YET]);
    try {
      replicas.push(...(await Promise.all([start(), start()])));
      await pointAt(config.validatingConfigName, names, replicas.map((r) => r.port));
      await Promise.all(replicas.map((r) => r.whenReady()));
      const secretRef = { apiVersion: "v1", kind: "Secret", namespace, name: defaultSecretName(config.serviceName) };
      const first = decodeCertSecret((await client.get(secretRef))!)!;
      await waitFor(async () => (await caBundles(config.validatingConfigName)).every((b) => b === first.caBundlePem), {
        description: "one CA bundle in both webhooks",
        timeoutMs: 30_000,
      });
      const firstSerial = new X509Certificate(first.serving.certPem).serialNumber;
      assert.deepEqual(await Promise.all(replicas.map((r) => servedSerial(r.port))), [firstSerial, firstSerial], "both replicas serve the Secret's certificate");
      assert.equal(splitPemBundle(first.caBundlePem).length, 2, "the CA and the next CA");
      await untilAdmitting(namespace);
      for (let i = 0; i < 2; i++) await client.create(stageSet(namespace));
      assertDeniedOn(await refusal(stageSet(namespace, breakMigration)), names, "spec.migrations[0].stage");

      // A third of the validity later (plus one poll), both have rotated to the same new certificate.
      await clock.run(VALIDITY / 3 + POLL, 2);
      const second = decodeCertSecret((await client.get(secretRef))!)!;
      const secondSerial = new X509Certificate(second.serving.certPem).serialNumber;
      assert.notEqual(secondSerial, firstSerial, "rotated");
      assert.equal(new X509Certificate(second.ca.certPem).serialNumber, new X509Certificate(first.nextCa.certPem).serialNumber, "signed by the CA that was already trusted");
      assert.deepEqual(await Promise.all(replicas.map((r) => servedSerial(r.port))), [secondSerial, secondSerial]);
      assert.deepEqual(await caBundles(config.validatingConfigName), [second.caBundlePem, second.caBundlePem]);
      for (let i = 0; i < 3; i++) await client.create(stageSet(namespace));
      assertDeniedOn(await refusal(stageSet(namespace, breakMigration)), names, "spec.migrations[0].stage");
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
      await unregister(config.validatingConfigName);
    }
  });
});

describe("admission webhook, cert-manager mode", () => {
  /** A Secret volume as the kubelet lays it out: files in `..<timestamp>/`, `..data` → it, `tls.crt` → `..data/tls.crt`. */
  async function writeVolume(dir: string, pair: PemKeyPair, generation: number): Promise<void> {
    const version = `..2024_01_01_00_00_0${generation}.${process.pid}`;
    await mkdir(join(dir, version));
    await writeFile(join(dir, version, "tls.crt"), pair.certPem);
    await writeFile(join(dir, version, "tls.key"), pair.keyPem);
    await symlink(version, join(dir, "..data_tmp"));
    await rename(join(dir, "..data_tmp"), join(dir, "..data"));
    for (const file of ["tls.crt", "tls.key"]) await symlink(join("..data", file), join(dir, file)).catch(() => {});
  }

  test("serves the directory's certificate and picks up an atomic swap without a restart", async () => {
    const namespace = await createTestNamespace(cluster, "webhook-cm");
    const dir = await mkdtemp(join(tmpdir(), "stageset-webhook-certs-"));
    const now = Date.now();
    const ca = await createCa({ now, validityMs: VALIDITY });
    const names = { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] };
    const [one, two] = await Promise.all([issueServingCert(ca, names, { now, validityMs: VALIDITY }), issueServingCert(ca, names, { now, validityMs: VALIDITY })]);
    await writeVolume(dir, one, 1);
    const config = webhookConfig(namespace, { certMode: "cert-manager", certDir: dir, validatingConfigName: "" });
    const configName = `stageset-webhook-test-${namespace}`;
    const clock = new FakeClock({ start: now });
    const webhook = await startWebhook({ config, client, namespace, log: silentLogger(), clock, host: "127.0.0.1", pollIntervalMs: 10_000 });
    let registered = false;
    try {
      await webhook.whenReady();
      assert.equal(await servedSerial(webhook.port), new X509Certificate(one.certPem).serialNumber);
      const [name] = await registerWebhooks(configName, namespace, [webhook.port], ca.certPem);
      registered = true;
      await untilAdmitting(namespace);
      assertDeniedOn(await refusal(stageSet(namespace, breakMigration)), name!, "spec.migrations[0].stage");

      await writeVolume(dir, two, 2);
      // The directory watch usually sees the rename at once; the poll on the clock is the fallback.
      await clock.advance(10_000);
      const wanted = new X509Certificate(two.certPem).serialNumber;
      await waitFor(async () => (await servedSerial(webhook.port)) === wanted, { description: "the swapped certificate served", timeoutMs: 30_000 });
      await client.create(stageSet(namespace));
      assertDeniedOn(await refusal(stageSet(namespace, breakMigration)), name!, "spec.migrations[0].stage");
    } finally {
      await webhook.close();
      if (registered) await unregister(configName);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

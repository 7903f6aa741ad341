/**
 * The validating admission webhook for StageSet (spec: "Webhook and TLS
 * provisioning", "Admission webhook TLS"; CONTRACT: the webhook checks what
 * the schema cannot). {@link startWebhook} binds the HTTPS server and keeps
 * its certificate current in one of two modes:
 *
 * - `cert-manager`: `tls.crt`/`tls.key` from `--webhook-cert-dir`, reloaded
 *   when cert-manager rotates them (cert-dir.ts);
 * - `self-signed`: a CA and serving certificate in one Secret shared by all
 *   replicas, rotated at a third of `--webhook-cert-validity`, its CA bundle
 *   patched into the ValidatingWebhookConfiguration (self-signed.ts,
 *   cert-secret.ts, ca-bundle.ts).
 *
 * Every replica serves admission, leader or not ("High availability":
 * admission must stay available on non-leaders), so nothing here touches
 * leader election or the work queue.
 *
 * The webhook configuration the chart renders (the integration test
 * registers the same shape): rules `stages.metio.wtf/v1` `stagesets`
 * CREATE/UPDATE, path {@link ADMISSION_PATH}, `sideEffects: None`,
 * `admissionReviewVersions: [v1]`, `timeoutSeconds: 10` and
 * `failurePolicy: Fail` — controller-runtime's default for webhooks it
 * scaffolds. With every replica down, creates and updates of StageSets are
 * refused with `failed calling webhook "<name>"` rather than let through
 * unchecked; the reconciler's own spec check (InvalidSpec) would still catch
 * an invalid spec, but only after it was stored.
 */
import type { WebhookConfig } from "../config/flags.js";
import type { KubeClient } from "../kube/client.js";
import type { Metrics } from "../server/metrics.js";
import { systemClock, type Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import type { StageSetValidator } from "./admission.js";
import { watchCertDir } from "./cert-dir.js";
import { defaultSecretName } from "./cert-secret.js";
import { serviceDnsNames, splitNames } from "./certs.js";
import { startSelfSigned } from "./self-signed.js";
import { startAdmissionServer } from "./server.js";

export { ADMISSION_PATH } from "./admission.js";
export { defaultSecretName, SecretKeys } from "./cert-secret.js";

/** The API calls the webhook makes (Secret get/create/update, ValidatingWebhookConfiguration get/patch). A KubeClient has them. */
export type WebhookClient = Pick<KubeClient, "get" | "create" | "update" | "patch">;

export interface StartWebhookOptions {
  /** The `--webhook-*` flags. `enabled` is the caller's to check: this starts the webhook regardless. */
  config: WebhookConfig;
  /** The controller's own client (not a tenant's). */
  client: WebhookClient;
  /** The controller's namespace: the self-signed Secret lives here, and it stands in for an empty `serviceNamespace`. */
  namespace: string;
  log: Logger;
  /** Time for validity, rotation and polls; default the system clock. */
  clock?: Clock;
  /** `stageset_webhook_cert_renewal_failures_total` is incremented once per failed self-signed sync. */
  metrics?: Pick<Metrics, "webhookCertRenewalFailuresTotal">;
  /**
   * More subjectAltNames for the self-signed serving certificate, IPs or DNS
   * names (`127.0.0.1`, `localhost`): for a webhook registered by URL, as the
   * tests do. The Service names are always included.
   */
  extraSans?: string[];
  /** Interface to bind; default every interface. */
  host?: string;
  /** Self-signed Secret name; default {@link defaultSecretName} of the service name. */
  secretName?: string;
  /** How often the Secret (self-signed) or the certificate files (cert-manager) are re-read, ms. Defaults: 60 s, 10 s. */
  pollIntervalMs?: number;
  /** Request body limit, bytes; default 7 MiB (server.ts). */
  maxBodyBytes?: number;
  /** Per-request time limit, ms; default 30 s. */
  requestTimeoutMs?: number;
  /** The validation; default validateStageSet. For tests. */
  validate?: StageSetValidator;
}

/** A running webhook. */
export interface WebhookHandle {
  /** The bound port (`config.port`, or the one picked for 0). */
  readonly port: number;
  /** True once a serving certificate is loaded and until {@link close}: wire into /readyz. */
  ready(): boolean;
  /** Resolves once the first certificate is served (or when closed first). */
  whenReady(): Promise<void>;
  /** Stops the certificate loop and the server. */
  close(): Promise<void>;
}

/**
 * Binds the webhook's HTTPS server on `config.port` and starts keeping its
 * certificate current; resolves once the port is bound, usually before the
 * first certificate (see {@link WebhookHandle.ready}). Rejects with the listen
 * error (EADDRINUSE), or an Error when `certMode` is `self-signed` and
 * `validatingConfigName` is empty. Certificate problems never reject: they
 * are logged and retried while `ready()` stays false (or the previous
 * certificate keeps serving).
 */
export async function startWebhook(options: StartWebhookOptions): Promise<WebhookHandle> {
  const { config, log } = options;
  const clock = options.clock ?? systemClock;
  if (config.certMode === "self-signed" && !config.validatingConfigName) {
    throw new Error("the self-signed webhook certificate mode needs --webhook-validating-config-name");
  }
  const server = await startAdmissionServer({
    port: config.port,
    host: options.host,
    log,
    maxBodyBytes: options.maxBodyBytes,
    requestTimeoutMs: options.requestTimeoutMs,
    validate: options.validate,
  });
  let closed = false;
  let markReady!: () => void;
  const readyPromise = new Promise<void>((resolve) => (markReady = resolve));
  let markClosed!: () => void;
  const closing = new Promise<void>((resolve) => (markClosed = resolve));
  const serve = (certificate: { certPem: string; keyPem: string }) => {
    server.setCertificate(certificate);
    markReady();
  };

  let stopLoop: () => Promise<void>;
  if (config.certMode === "cert-manager") {
    const watcher = watchCertDir({ dir: config.certDir, clock, log, serve, pollIntervalMs: options.pollIntervalMs });
    stopLoop = () => watcher.stop();
  } else {
    const serviceNamespace = config.serviceNamespace || options.namespace;
    const extra = splitNames(options.extraSans ?? []);
    const provisioner = startSelfSigned({
      client: options.client,
      secretNamespace: options.namespace,
      secretName: options.secretName ?? defaultSecretName(config.serviceName),
      validatingConfigName: config.validatingConfigName,
      names: { dnsNames: [...serviceDnsNames(config.serviceName, serviceNamespace), ...extra.dnsNames], ipAddresses: extra.ipAddresses },
      validityMs: config.certValidityMs,
      clock,
      log,
      serve,
      serving: () => server.hasCertificate(),
      onFailure: () => options.metrics?.webhookCertRenewalFailuresTotal.inc(),
      pollIntervalMs: options.pollIntervalMs,
    });
    stopLoop = () => provisioner.stop();
  }
  log.info({ port: server.port, certMode: config.certMode }, "admission webhook listening");

  return {
    port: server.port,
    ready: () => !closed && server.hasCertificate(),
    whenReady: () => Promise.race([readyPromise, closing]),
    close: async () => {
      if (closed) return;
      closed = true;
      markClosed();
      await stopLoop();
      await server.close();
    },
  };
}

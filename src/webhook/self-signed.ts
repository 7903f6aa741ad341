/**
 * Self-signed mode's loop, run by every replica (leader or not): keep the
 * shared Secret's certificates current (cert-secret.ts), keep the CA bundle
 * in the ValidatingWebhookConfiguration (ca-bundle.ts), and serve the
 * Secret's serving certificate.
 *
 * One sync: read (and if due, renew) the Secret → patch the bundle where it
 * differs → load the serving certificate if it changed. The loop then sleeps
 * on the Clock until the renewal is due or `pollIntervalMs` passes, whichever
 * is first: polling the Secret is how a replica picks up another replica's
 * renewal (late pickup is harmless: the old certificate stays trusted until
 * it expires). A failed sync is logged, counted
 * (`stageset_webhook_cert_renewal_failures_total`) and retried with capped
 * exponential backoff; the certificate being served keeps being served.
 */
import type { Logger } from "../util/log.js";
import { pause, type Clock } from "../util/clock.js";
import { backoffDelay, type BackoffPolicy } from "../kube/backoff.js";
import { ensureCaBundle, type CaBundleClient } from "./ca-bundle.js";
import { parseCertificate, validityOf, type SubjectAltNames } from "./certs.js";
import { renewalDue, syncCertSecret, type CertSecretData, type SecretClient } from "./cert-secret.js";
import type { ServingCertificate } from "./server.js";

/** How often a replica re-reads the Secret by default: 1 minute. */
export const DEFAULT_SECRET_POLL_INTERVAL_MS = 60_000;

/** Retry after a failed sync: 1 s doubling up to 5 minutes. */
export const RENEWAL_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 5 * 60_000 };

export interface SelfSignedOptions {
  client: SecretClient & CaBundleClient;
  /** Where the Secret lives (the controller's namespace). */
  secretNamespace: string;
  secretName: string;
  /** ValidatingWebhookConfiguration whose webhooks get the CA bundle. */
  validatingConfigName: string;
  /** Names the serving certificate carries. */
  names: SubjectAltNames;
  /** Serving certificate validity, ms. */
  validityMs: number;
  clock: Clock;
  log: Logger;
  /** Serves a certificate; throws when it is unusable. */
  serve: (certificate: ServingCertificate) => void;
  /** Whether a certificate is being served at all. */
  serving: () => boolean;
  /** Called once per failed sync (the renewal-failure counter). */
  onFailure?: (err: unknown) => void;
  pollIntervalMs?: number;
  backoff?: BackoffPolicy;
}

/** A running loop: {@link stop} ends it; {@link synced} resolves after the first sync that succeeded. */
export interface SelfSignedProvisioner {
  stop(): Promise<void>;
  /** Resolves after the first sync that succeeded (or when stopped before one did). */
  readonly synced: Promise<void>;
  /** The Secret content last synced, if any. */
  current(): CertSecretData | undefined;
}

/** Starts the loop; the first sync begins at once. Never throws: failures are logged, counted and retried. */
export function startSelfSigned(options: SelfSignedOptions): SelfSignedProvisioner {
  const { clock, log } = options;
  const pollMs = options.pollIntervalMs ?? DEFAULT_SECRET_POLL_INTERVAL_MS;
  const backoff = options.backoff ?? RENEWAL_BACKOFF;
  const stopper = new AbortController();
  let data: CertSecretData | undefined;
  let servedPem: string | undefined;
  let servedNotAfter = 0;
  let markSynced!: () => void;
  const synced = new Promise<void>((resolve) => (markSynced = resolve));
  const ref = { namespace: options.secretNamespace, name: options.secretName };

  function serve(next: CertSecretData): void {
    if (servedPem === next.serving.certPem) return;
    options.serve(next.serving);
    const cert = parseCertificate(next.serving.certPem);
    servedPem = next.serving.certPem;
    servedNotAfter = validityOf(cert).notAfter;
    log.info({ serial: cert.serialNumber, notAfter: cert.validTo, secret: `${ref.namespace}/${ref.name}` }, "webhook serving a new certificate");
  }

  async function sync(): Promise<void> {
    const state = await syncCertSecret(options.client, ref, () => ({ now: clock.now(), validityMs: options.validityMs, names: options.names }));
    if (state.wrote) {
      log.info({ secret: `${ref.namespace}/${ref.name}`, action: state.wrote.action, reason: state.wrote.reason }, "webhook certificate Secret written");
    }
    data = state.data;
    try {
      const patched = await ensureCaBundle(options.client, options.validatingConfigName, state.data.caBundlePem);
      if (patched.length > 0) log.info({ configuration: options.validatingConfigName, webhooks: patched }, "webhook CA bundle patched");
    } catch (err) {
      // Without the bundle the API server may not trust a new CA yet: keep a certificate that still works,
      // but serve the new one when there is none (or it expired) — nothing to lose then.
      if (!options.serving() || servedNotAfter <= clock.now()) serve(state.data);
      throw err;
    }
    serve(state.data);
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (!stopper.signal.aborted) {
      let delay: number;
      try {
        await sync();
        failures = 0;
        markSynced();
        const due = data ? renewalDue(data, options.validityMs) : undefined;
        delay = Math.max(0, Math.min(pollMs, (due ?? clock.now()) - clock.now()));
        // Due now yet nothing written means another writer keeps winning or the plan disagrees: don't spin.
        if (delay === 0) delay = Math.min(pollMs, backoff.baseMs);
      } catch (err) {
        if (stopper.signal.aborted) break;
        failures++;
        options.onFailure?.(err);
        delay = backoffDelay(failures - 1, backoff);
        log.error({ err: (err as Error).message, failures, retryInMs: delay }, "webhook certificate sync failed; the current certificate keeps serving");
      }
      await pause(clock, delay, stopper.signal);
    }
    markSynced();
  }

  const running = run();
  return {
    stop: async () => {
      stopper.abort();
      await running;
    },
    synced,
    current: () => data,
  };
}

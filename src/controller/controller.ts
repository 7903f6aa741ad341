import { readFileSync } from "node:fs";
import type { KubeConfigSource } from "../kube/kubeconfig-file.js";
import type { ControllerConfig } from "../config/flags.js";
import { KubeClient } from "../kube/client.js";
import { EventRecorder } from "../kube/events.js";
import { FluxEventForwarder } from "../kube/flux-events.js";
import { startGateServer } from "../server/gate.js";
import { Metrics, serveMetrics } from "../server/metrics.js";
import { startProbeServer, type ProbeServer } from "../server/probes.js";
import { ArtifactCache } from "../source/artifact-cache.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { Manager } from "./manager.js";
import { executorFor } from "../actions/executors.js";
import { rollbackStoreFromConfig } from "../rollback/config.js";
import { defaultKmsProviders } from "../sops/kms/index.js";
import { StageSetReconciler } from "./reconciler.js";

const SERVICE_ACCOUNT_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

export interface ControllerHandle {
  manager: Manager;
  /** The process's event recorder (`flush()` waits until every event is written). */
  events: EventRecorder;
  metrics: Metrics;
  probes: ProbeServer;
  metricsPort: number | undefined;
  /** The gate endpoint's port, when `--gate-bind-address` is not empty. */
  gatePort: number | undefined;
  /** The admission webhook's port, when `--enable-webhook`. */
  webhookPort: number | undefined;
  client: KubeClient;
  stop(): Promise<void>;
}

export interface StartOptions {
  config: ControllerConfig;
  kubeConfig: KubeConfigSource;
  log: Logger;
  /** Overrides for tests: a fixed identity, faster health polling. */
  identity?: string;
  healthPollIntervalMs?: number;
  /** Register process-wide default metrics (off for in-process test instances). */
  defaultMetrics?: boolean;
  /**
   * Times leader election, the work queue and event aggregation; default the
   * system clock. Tests pass a FakeClock to drive lease expiry.
   */
  clock?: Clock;
  /** Extra SANs for a self-signed webhook certificate (tests call it on 127.0.0.1). */
  webhookExtraSans?: string[];
}

/**
 * Builds and starts one controller process: client, caches, leader
 * election, work queue, reconciler, probes and metrics. `stop()` shuts it
 * down gracefully (in-flight reconciles are aborted, caches stopped, servers
 * closed).
 */
export async function startController(options: StartOptions): Promise<ControllerHandle> {
  const { config, log } = options;
  const client = KubeClient.fromKubeConfig(options.kubeConfig, { userAgent: "stageset-controller" });
  // --events-addr: every event also goes to Flux's notification-controller (docs/flux-events.md).
  const forwarder = config.eventsAddr
    ? new FluxEventForwarder({
        address: config.eventsAddr,
        log,
        ...(options.identity ? { reportingInstance: options.identity } : {}),
        ...(options.clock ? { clock: options.clock } : {}),
      })
    : undefined;
  const events = new EventRecorder(client, {
    onError: (err) => log.debug({ err: String(err) }, "event write failed"),
    ...(options.identity ? { reportingInstance: options.identity } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(forwarder ? { forwarder } : {}),
  });
  const metrics = new Metrics({ defaultMetrics: options.defaultMetrics ?? true });
  const artifacts = new ArtifactCache();
  // A store that cannot be used (a missing bucket, a directory that cannot be written) stops the start: fail closed.
  const rollbackStore = await rollbackStoreFromConfig(config.rollbackStore, log);
  const manager = new Manager({
    client,
    log,
    events,
    watchNamespaces: config.watchNamespaces,
    concurrency: config.concurrent,
    queueMetrics: metrics.queueMetrics,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(config.leaderElect
      ? {
          leaderElection: {
            namespace: controllerNamespace(config),
            leaseDurationMs: config.leaderElectionLeaseDurationMs,
            renewDeadlineMs: config.leaderElectionRenewDeadlineMs,
            retryPeriodMs: config.leaderElectionRetryPeriodMs,
            releaseOnCancel: config.leaderElectionReleaseOnCancel,
            ...(options.identity ? { identity: options.identity } : {}),
          },
        }
      : {}),
    reconcilerFactory: (caches) => {
      const reconciler = new StageSetReconciler({
        client,
        executorFor,
        kmsProviders: defaultKmsProviders(),
        ...(rollbackStore ? { rollbackStore } : {}),
        ...(options.clock ? { clock: options.clock } : {}),
        caches,
        artifacts,
        events,
        metrics,
        log,
        options: {
          defaultIntervalMs: config.defaultIntervalMs,
          requeueDependencyMs: config.requeueDependencyMs,
          noCrossNamespaceRefs: config.noCrossNamespaceRefs,
          inventoryMode: config.inventoryMode,
          inventoryShardCap: config.inventoryShardCap,
          runbookBaseUrl: config.runbookBaseUrl,
          allowedActionHosts: config.allowedActionHosts,
          concurrentBuilds: config.concurrentBuilds,
          ...(options.healthPollIntervalMs ? { healthPollIntervalMs: options.healthPollIntervalMs } : {}),
        },
      });
      const workers = metrics.runtimeActiveWorkers.labels({ controller: "stageset" });
      return async (key, signal) => {
        workers.inc();
        try {
          return await reconciler.reconcile(key, signal);
        } finally {
          workers.dec();
        }
      };
    },
  });

  metrics.observeProcess({ inFlightSeconds: () => manager.inFlightSeconds(), isLeader: () => manager.isLeader() }, config.concurrent);
  const probes = await startProbeServer({
    bindAddress: config.healthProbeBindAddress,
    readyChecks: { "informers-synced": () => manager.synced() },
  });
  // Admission is served by every replica, leader or not; /readyz waits for its certificate.
  const webhook = config.webhook.enabled
    ? // Imported when enabled: its certificate code (node-forge) is not needed otherwise.
      await (await import("../webhook/index.js")).startWebhook({
        config: config.webhook,
        client,
        namespace: config.webhook.serviceNamespace || controllerNamespace(config),
        log: log.child({ component: "webhook" }),
        metrics,
        extraSans: [...(config.webhook.extraSans ?? []), ...(options.webhookExtraSans ?? [])],
        ...(options.clock ? { clock: options.clock } : {}),
      })
    : undefined;
  if (webhook) probes.addReadyCheck("webhook", () => webhook.ready());
  const served = await serveMetrics(metrics, config.metricsBindAddress);
  // Read-only, from the watch cache: every replica answers, leader or not.
  const gate = config.gateBindAddress ? await startGateServer({ bindAddress: config.gateBindAddress, lookup: (namespace, name) => manager.caches.stageSets.get(namespace, name) }) : undefined;
  await manager.start();
  log.info(
    {
      watchNamespaces: config.watchNamespaces.length ? config.watchNamespaces : "all",
      leaderElect: config.leaderElect,
      healthProbePort: probes.port,
      metricsPort: served?.port,
      gatePort: gate?.port,
      webhookPort: webhook?.port,
    },
    "controller started",
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await manager.stop();
      await events.close();
      await probes.close();
      await gate?.close();
      await webhook?.close();
      if (served) await new Promise<void>((resolve) => served.server.close(() => resolve()));
      await artifacts.close();
      client.close();
    })());
  return { manager, events, metrics, probes, metricsPort: served?.port, gatePort: gate?.port, webhookPort: webhook?.port, client, stop };
}

/** Where the leader-election Lease lives: flag, $POD_NAMESPACE, the pod's own namespace, else default. */
export function controllerNamespace(config: ControllerConfig): string {
  if (config.leaderElectionNamespace) return config.leaderElectionNamespace;
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, "utf8").trim();
  } catch {
    return "default";
  }
}

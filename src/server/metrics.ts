import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { LEASE_NAME } from "../kube/leader-election.js";
import type { WorkQueueMetrics } from "../kube/workqueue.js";
import { listenOn } from "./listen.js";

const CONTROLLER = "stageset";

/**
 * The controller's Prometheus series: the custom `stageset_*` metrics of the
 * operations guide plus the `controller_runtime_*` and `workqueue_*` series
 * dashboards built for Go controllers expect.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly reconcileTotal: Counter<"namespace" | "name" | "reason">;
  readonly stageAppliedTotal: Counter<"namespace" | "name" | "stage">;
  readonly driftCorrectedTotal: Counter<"namespace" | "name" | "stage">;
  readonly updateDeferredTotal: Counter<"namespace" | "name">;
  readonly webhookCertRenewalFailuresTotal: Counter;
  readonly stageReady: Gauge<"namespace" | "stageset" | "stage">;
  readonly actionTotal: Counter<"namespace" | "name" | "stage" | "list" | "result">;
  readonly actionDuration: Histogram<"namespace" | "name" | "stage" | "list">;
  readonly stagePhaseDuration: Histogram<"phase">;
  readonly migrationTotal: Counter<"namespace" | "name" | "migration" | "result">;
  readonly runtimeReconcileTotal: Counter<"controller" | "result">;
  readonly runtimeReconcileErrors: Counter<"controller">;
  readonly runtimeReconcileTime: Histogram<"controller">;
  readonly runtimeActiveWorkers: Gauge<"controller">;
  readonly runtimeReconcilePanics: Counter<"controller">;
  readonly runtimeTerminalReconcileErrors: Counter<"controller">;
  readonly queueMetrics: WorkQueueMetrics;
  /** What the scrape-time series read: the work queue's in-flight keys and leadership. */
  #probes: { inFlightSeconds: () => number[]; isLeader: () => boolean } = { inFlightSeconds: () => [], isLeader: () => false };

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.reconcileTotal = new Counter({ name: "stageset_reconcile_total", help: "Reconciles by terminal Ready reason.", labelNames: ["namespace", "name", "reason"], registers });
    this.stageAppliedTotal = new Counter({ name: "stageset_stage_applied_total", help: "Stages applied and verified.", labelNames: ["namespace", "name", "stage"], registers });
    this.driftCorrectedTotal = new Counter({ name: "stageset_drift_corrected_total", help: "Out-of-band drift re-asserted on a steady-state reconcile.", labelNames: ["namespace", "name", "stage"], registers });
    this.updateDeferredTotal = new Counter({ name: "stageset_update_deferred_total", help: "Rollouts held by a closed update window.", labelNames: ["namespace", "name"], registers });
    this.webhookCertRenewalFailuresTotal = new Counter({ name: "stageset_webhook_cert_renewal_failures_total", help: "Failed self-signed webhook certificate renewals.", registers });
    this.stageReady = new Gauge({ name: "stageset_stage_ready", help: "1 when a stage is Ready, else 0.", labelNames: ["namespace", "stageset", "stage"], registers });
    this.runtimeReconcileTotal = new Counter({ name: "controller_runtime_reconcile_total", help: "Total number of reconciliations per controller.", labelNames: ["controller", "result"], registers });
    this.runtimeReconcileErrors = new Counter({ name: "controller_runtime_reconcile_errors_total", help: "Total number of reconciliation errors per controller.", labelNames: ["controller"], registers });
    this.actionTotal = new Counter({
      name: "stageset_action_total",
      help: "Action attempts by list and result (success, failure).",
      labelNames: ["namespace", "name", "stage", "list", "result"],
      registers,
    });
    this.actionDuration = new Histogram({
      name: "stageset_action_duration_seconds",
      help: "Duration of action attempts.",
      labelNames: ["namespace", "name", "stage", "list"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    });
    // By phase alone: per StageSet and stage it would be a histogram per object; the debug log's "stage timings" has that detail.
    this.stagePhaseDuration = new Histogram({
      name: "stageset_stage_phase_duration_seconds",
      help: "Duration of each phase of a stage run (build, pre, apply, verify, post, prune).",
      labelNames: ["phase"],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    });
    this.migrationTotal = new Counter({
      name: "stageset_migration_total",
      help: "Versioned migrations run, by result (success, failure).",
      labelNames: ["namespace", "name", "migration", "result"],
      registers,
    });
    this.runtimeReconcileTime = new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller.",
      labelNames: ["controller"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.runtimeActiveWorkers = new Gauge({ name: "controller_runtime_active_workers", help: "Number of currently used workers per controller.", labelNames: ["controller"], registers });
    this.runtimeReconcilePanics = new Counter({
      name: "controller_runtime_reconcile_panics_total",
      help: "Total number of reconciliation panics per controller (here: a reconcile that failed with an unexpected exception, a bug).",
      labelNames: ["controller"],
      registers,
    });
    this.runtimeTerminalReconcileErrors = new Counter({
      name: "controller_runtime_terminal_reconcile_errors_total",
      help: "Total number of terminal reconciliation errors per controller (the StageSet is Stalled until its input changes).",
      labelNames: ["controller"],
      registers,
    });
    for (const series of [this.runtimeReconcilePanics, this.runtimeTerminalReconcileErrors, this.runtimeReconcileErrors]) series.inc({ controller: CONTROLLER }, 0);
    this.maxConcurrentReconciles = new Gauge({ name: "controller_runtime_max_concurrent_reconciles", help: "Maximum number of concurrent reconciles per controller.", labelNames: ["controller"], registers });
    const probes = () => this.#probes;
    new Gauge({
      name: "leader_election_master_status",
      help: "1 while this process holds the leader-election Lease (or runs without leader election), else 0.",
      labelNames: ["name"],
      registers,
      collect() {
        this.set({ name: LEASE_NAME }, probes().isLeader() ? 1 : 0);
      },
    });

    // controller-runtime's workqueue series and label sets: name and controller (both the controller's name), depth also priority.
    const labels = { name: CONTROLLER, controller: CONTROLLER };
    const labelNames = ["name", "controller"] as const;
    const depth = new Gauge({ name: "workqueue_depth", help: "Current depth of workqueue by workqueue and priority.", labelNames: [...labelNames, "priority"], registers });
    const adds = new Counter({ name: "workqueue_adds_total", help: "Total number of adds handled by workqueue.", labelNames, registers });
    const retries = new Counter({ name: "workqueue_retries_total", help: "Total number of retries handled by workqueue.", labelNames, registers });
    const buckets = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000];
    const queueDuration = new Histogram({ name: "workqueue_queue_duration_seconds", help: "How long in seconds an item stays in workqueue before being requested.", labelNames, buckets, registers });
    const workDuration = new Histogram({ name: "workqueue_work_duration_seconds", help: "How long in seconds processing an item from workqueue takes.", labelNames, buckets, registers });
    new Gauge({
      name: "workqueue_unfinished_work_seconds",
      help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads.",
      labelNames,
      registers,
      collect() {
        this.set(labels, probes().inFlightSeconds().reduce((sum, s) => sum + s, 0));
      },
    });
    new Gauge({
      name: "workqueue_longest_running_processor_seconds",
      help: "How many seconds has the longest running processor for workqueue been running.",
      labelNames,
      registers,
      collect() {
        this.set(labels, Math.max(0, ...probes().inFlightSeconds()));
      },
    });
    depth.set({ ...labels, priority: "" }, 0);
    adds.inc(labels, 0);
    retries.inc(labels, 0);
    this.queueMetrics = {
      depth: (n) => depth.set({ ...labels, priority: "" }, n),
      added: () => adds.inc(labels),
      retried: () => retries.inc(labels),
      queueDuration: (s) => queueDuration.observe(labels, s),
      workDuration: (s) => workDuration.observe(labels, s),
    };
  }

  readonly maxConcurrentReconciles: Gauge<"controller">;

  /**
   * Connects the scrape-time series to the running process: the work
   * queue's in-flight keys (seconds each) and whether this process leads;
   * `concurrency` is `--concurrent`.
   */
  observeProcess(probes: { inFlightSeconds: () => number[]; isLeader: () => boolean }, concurrency: number): void {
    this.#probes = probes;
    this.maxConcurrentReconciles.set({ controller: CONTROLLER }, concurrency);
  }

  observeReconcile(seconds: number, result: "success" | "error" | "requeue" | "requeue_after"): void {
    this.runtimeReconcileTime.observe({ controller: CONTROLLER }, seconds);
    this.runtimeReconcileTotal.inc({ controller: CONTROLLER, result });
    if (result === "error") this.runtimeReconcileErrors.inc({ controller: CONTROLLER });
  }

  /** Forgets the per-stage gauges of a deleted StageSet. */
  forgetStageSet(namespace: string, name: string, stages: string[]): void {
    for (const stage of stages) this.stageReady.remove({ namespace, stageset: name, stage });
  }
}

/** Serves `/metrics` on `bindAddress` (`"0"` disables); resolves to the server and its port. */
export async function serveMetrics(metrics: Metrics, bindAddress: string): Promise<{ server: Server; port: number } | undefined> {
  if (bindAddress === "0" || bindAddress === "") return undefined;
  const server = createServer((req, res) => {
    if (req.method !== "GET" || new URL(req.url ?? "/", "http://x").pathname !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    metrics.registry
      .metrics()
      .then((body) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body))
      .catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  await listenOn(server, bindAddress);
  return { server, port: (server.address() as AddressInfo).port };
}

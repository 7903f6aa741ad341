import { Writable } from "node:stream";
import { parseControllerFlags } from "../../src/config/flags.js";
import { startController, type ControllerHandle } from "../../src/controller/controller.js";
import { WRITE_VERBS } from "../../src/kube/transport.js";
import type { Clock } from "../../src/util/clock.js";
import { createLogger, silentLogger } from "../../src/util/log.js";
import type { TestCluster } from "./cluster.js";
import { waitFor } from "./wait.js";

/**
 * Runs a controller in this process, watching only `namespace` so tests in
 * other namespaces (running in parallel against the same control plane) are
 * not disturbed. Extra flags are parsed exactly like the binary's.
 * STAGESET_TEST_LOG=debug shows its logs. A `clock` (a FakeClock) times its
 * leader election, work queue and event aggregation.
 */
/**
 * The flags of a test controller watching only `namespace`: probes and the
 * gate on ephemeral loopback ports, no metrics listener, no webhook.
 */
export function isolatedControllerFlags(namespace: string): string[] {
  return [
    "--watch-namespaces",
    namespace,
    "--health-probe-bind-address",
    "127.0.0.1:0",
    "--metrics-bind-address",
    "0",
    "--gate-bind-address",
    "127.0.0.1:0",
    "--enable-webhook=false",
  ];
}

export async function startTestController(
  cluster: TestCluster,
  namespace: string,
  flags: string[] = [],
  options: { identity?: string; clock?: Clock; /** Receives every JSON log line at debug level (for tests that inspect logs). */ logLines?: string[] } = {},
): Promise<ControllerHandle> {
  const config = parseControllerFlags([
    ...isolatedControllerFlags(namespace),
    "--default-interval",
    "1m",
    ...flags,
  ]);
  const level = process.env.STAGESET_TEST_LOG;
  const lines = options.logLines;
  const log = lines
    ? createLogger({ level: "debug", encoding: "json", destination: new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString("utf8")), done()) }) })
    : level
      ? createLogger({ level, encoding: "console" }).child({ ns: namespace })
      : silentLogger();
  return startController({
    config,
    kubeConfig: cluster.kubeConfig,
    log,
    healthPollIntervalMs: 250,
    defaultMetrics: false,
    ...(options.identity ? { identity: options.identity } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
}

/** Reconciles this controller instance has finished (controller_runtime_reconcile_total). */
export async function reconcileCount(handle: ControllerHandle): Promise<number> {
  const metric = handle.metrics.runtimeReconcileTotal;
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

/** Write requests (create, update, patch, apply, delete) the controller's client made since its counters were reset. */
export function writeRequests(handle: ControllerHandle): number {
  const stats = handle.client.stats();
  return [...WRITE_VERBS].reduce((sum, verb) => sum + stats[verb], 0);
}

/**
 * Waits until the controller has nothing left to do now: no reconcile is
 * running or queued (requeues scheduled for later do not count), and every
 * event it recorded has been written. What a test waits for before it resets
 * the request counters to measure the next run alone. Throws a
 * WaitTimeoutError after `timeoutMs` (default 60s) of real time.
 */
export async function waitForIdle(handle: ControllerHandle, timeoutMs = 60_000): Promise<void> {
  const gauge = async (name: string) => {
    const metric = handle.metrics.registry.getSingleMetric(name);
    if (!metric) throw new Error(`no metric ${name}`);
    return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
  };
  // Seen idle on two probes in a row: a key handed from the queue to a worker
  // is briefly neither queued nor running, but never across a macrotask.
  let idleProbes = 0;
  await waitFor(
    async () => {
      const idle = (await gauge("controller_runtime_active_workers")) === 0 && (await gauge("workqueue_depth")) === 0;
      idleProbes = idle ? idleProbes + 1 : 0;
      return idleProbes >= 2;
    },
    {
      description: "the controller to have no reconcile running or queued",
      timeoutMs,
      intervalMs: 20,
    },
  );
  await handle.events.flush();
}

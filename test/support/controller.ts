import { parseControllerFlags } from "../../src/config/flags.js";
import { startController, type ControllerHandle } from "../../src/controller/controller.js";
import { WRITE_VERBS } from "../../src/kube/transport.js";
import { createLogger, silentLogger } from "../../src/util/log.js";
import type { TestCluster } from "./cluster.js";

/**
 * Runs a controller in this process, watching only `namespace` so tests in
 * other namespaces (running in parallel against the same control plane) are
 * not disturbed. Extra flags are parsed exactly like the binary's.
 * STAGESET_TEST_LOG=debug shows its logs.
 */
export async function startTestController(
  cluster: TestCluster,
  namespace: string,
  flags: string[] = [],
  options: { identity?: string } = {},
): Promise<ControllerHandle> {
  const config = parseControllerFlags([
    "--watch-namespaces",
    namespace,
    "--health-probe-bind-address",
    "127.0.0.1:0",
    "--metrics-bind-address",
    "0",
    "--default-interval",
    "1m",
    ...flags,
  ]);
  const level = process.env.STAGESET_TEST_LOG;
  const log = level ? createLogger({ level, encoding: "console" }).child({ ns: namespace }) : silentLogger();
  return startController({
    config,
    kubeConfig: cluster.kubeConfig,
    log,
    healthPollIntervalMs: 250,
    defaultMetrics: false,
    ...(options.identity ? { identity: options.identity } : {}),
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

import assert from "node:assert/strict";
import { test } from "node:test";
import { Metrics } from "../../../src/server/metrics.js";

/**
 * Every series the Operations page documents, plus the controller-runtime and
 * workqueue series dashboards built for Go controllers query, with the exact
 * label sets (controller-runtime v0.20+: workqueue series carry `name` and
 * `controller`, depth also `priority`).
 */
const EXPECTED: [name: string, type: string, labels: string[]][] = [
  ["stageset_reconcile_total", "counter", ["namespace", "name", "reason"]],
  ["stageset_stage_applied_total", "counter", ["namespace", "name", "stage"]],
  ["stageset_drift_corrected_total", "counter", ["namespace", "name", "stage"]],
  ["stageset_update_deferred_total", "counter", ["namespace", "name"]],
  ["stageset_webhook_cert_renewal_failures_total", "counter", []],
  ["stageset_stage_ready", "gauge", ["namespace", "stageset", "stage"]],
  ["stageset_action_total", "counter", ["namespace", "name", "stage", "list", "result"]],
  ["stageset_action_duration_seconds", "histogram", ["namespace", "name", "stage", "list"]],
  ["stageset_stage_phase_duration_seconds", "histogram", ["phase"]],
  ["stageset_migration_total", "counter", ["namespace", "name", "migration", "result"]],
  ["controller_runtime_reconcile_total", "counter", ["controller", "result"]],
  ["controller_runtime_reconcile_errors_total", "counter", ["controller"]],
  ["controller_runtime_reconcile_panics_total", "counter", ["controller"]],
  ["controller_runtime_terminal_reconcile_errors_total", "counter", ["controller"]],
  ["controller_runtime_reconcile_time_seconds", "histogram", ["controller"]],
  ["controller_runtime_active_workers", "gauge", ["controller"]],
  ["controller_runtime_max_concurrent_reconciles", "gauge", ["controller"]],
  ["leader_election_master_status", "gauge", ["name"]],
  ["workqueue_depth", "gauge", ["name", "controller", "priority"]],
  ["workqueue_adds_total", "counter", ["name", "controller"]],
  ["workqueue_retries_total", "counter", ["name", "controller"]],
  ["workqueue_queue_duration_seconds", "histogram", ["name", "controller"]],
  ["workqueue_work_duration_seconds", "histogram", ["name", "controller"]],
  ["workqueue_unfinished_work_seconds", "gauge", ["name", "controller"]],
  ["workqueue_longest_running_processor_seconds", "gauge", ["name", "controller"]],
];

test("every documented series is registered with its type and label set", async () => {
  const metrics = new Metrics({ defaultMetrics: false });
  const registered = await metrics.registry.getMetricsAsJSON();
  for (const [name, type, labels] of EXPECTED) {
    const metric = metrics.registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined;
    assert.ok(metric, `${name} is registered`);
    assert.equal(registered.find((m) => m.name === name)?.type, type, `${name} is a ${type}`);
    assert.deepEqual([...(metric.labelNames ?? [])], labels, `${name} labels`);
  }
});

test("the scrape-time series read the work queue and leadership when scraped", async () => {
  const metrics = new Metrics({ defaultMetrics: false });
  let inFlight = [1.5, 4];
  let leader = false;
  metrics.observeProcess({ inFlightSeconds: () => inFlight, isLeader: () => leader }, 4);
  let text = await metrics.registry.metrics();
  assert.match(text, /workqueue_unfinished_work_seconds\{name="stageset",controller="stageset"\} 5.5/);
  assert.match(text, /workqueue_longest_running_processor_seconds\{name="stageset",controller="stageset"\} 4/);
  assert.match(text, /leader_election_master_status\{name="stageset-controller.stages.metio.wtf"\} 0/);
  assert.match(text, /controller_runtime_max_concurrent_reconciles\{controller="stageset"\} 4/);
  inFlight = [];
  leader = true;
  text = await metrics.registry.metrics();
  assert.match(text, /workqueue_unfinished_work_seconds\{name="stageset",controller="stageset"\} 0/);
  assert.match(text, /workqueue_longest_running_processor_seconds\{name="stageset",controller="stageset"\} 0/);
  assert.match(text, /leader_election_master_status\{name="stageset-controller.stages.metio.wtf"\} 1/);
});

// The chart's PrometheusRule: the rules parse (promtool check rules), each
// of the five documented alerts fires and stays quiet on synthetic series
// (promtool test rules, test/fixtures/chart/alerts-test.yaml), and every
// metric the rules and the synthetic series name is one the controller
// exports, with its own label names.
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { Metrics } from "../../../src/server/metrics.js";
import { repoRoot, toolPath } from "../../../src/util/tools.js";
import { mustFind, renderChart, run } from "../../support/helm.js";

const FIXTURE = join(repoRoot(), "test", "fixtures", "chart", "alerts-test.yaml");
const DOCUMENTED_ALERTS = [
  "StageSetReconcileErrorsHigh",
  "StageSetControllerWorkqueueDepthHigh",
  "StageSetReconcileLatencyHigh",
  "StageSetControllerPodDown",
  "StageSetWebhookCertRenewalFailing",
];
/** Series the rules read that other exporters provide: Prometheus itself and kube-state-metrics. */
const EXTERNAL_METRICS = new Set(["up", "kube_pod_status_ready"]);
/** Labels a ServiceMonitor scrape adds to every series (target labels). */
const TARGET_LABELS = new Set(["job", "pod", "namespace", "instance", "service", "endpoint", "container"]);

interface Rule {
  alert?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleGroups {
  groups: { name: string; rules: Rule[] }[];
}

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The chart's rule groups for release "ss" in "stageset-system", as a Prometheus rule file in a fresh directory with the fixture beside it. */
async function ruleFile(values: Record<string, unknown> = {}): Promise<{ dir: string; groups: RuleGroups }> {
  const objects = await renderChart({ release: "ss", namespace: "stageset-system", values: { "metrics.prometheusRule.enabled": true, ...values } });
  const groups = mustFind(objects, "PrometheusRule").spec as unknown as RuleGroups;
  const dir = mkdtempSync(join(tmpdir(), "stageset-alerts-"));
  dirs.push(dir);
  writeFileSync(join(dir, "rules.yaml"), stringify(groups));
  copyFileSync(FIXTURE, join(dir, "alerts-test.yaml"));
  return { dir, groups };
}

/** Metric names in a PromQL expression (identifiers followed by `{` or `[` or standing alone), minus functions and keywords. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutLabelBlocks = withoutStrings.replace(/\{[^}]*\}/g, "{}").replace(/\[[^\]]*\]/g, "[]");
  const keywords = new Set(["sum", "max", "min", "by", "on", "without", "unless", "or", "and", "rate", "increase", "absent", "histogram_quantile", "ignoring", "group_left", "group_right"]);
  const names = new Set<string>();
  for (const match of withoutLabelBlocks.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)) {
    const name = match[1]!;
    const before = withoutLabelBlocks.slice(0, match.index);
    if (keywords.has(name) || /(by|on|without)\s*\([^)]*$/.test(before)) continue;
    names.add(name);
  }
  return [...names];
}

/** The controller's exported series: name → label names (histograms also as _bucket/_sum/_count, with le). */
async function exportedSeries(): Promise<Map<string, Set<string>>> {
  const metrics = new Metrics({ defaultMetrics: true });
  const exported = new Map<string, Set<string>>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    const labels = new Set<string>();
    for (const value of metric.values) for (const key of Object.keys(value.labels)) labels.add(key);
    // prom-client lists a label only once a value carries it; add the declared ones.
    const declared = (metrics.registry.getSingleMetric(metric.name) as unknown as { labelNames?: string[] } | undefined)?.labelNames ?? [];
    for (const name of declared) labels.add(name);
    exported.set(metric.name, labels);
    if (String(metric.type) === "histogram") {
      exported.set(`${metric.name}_bucket`, new Set([...labels, "le"]));
      exported.set(`${metric.name}_sum`, labels);
      exported.set(`${metric.name}_count`, labels);
    }
  }
  return exported;
}

describe("chart: alerts", () => {
  test("the rules parse and hold the five documented alerts, each with a severity and a runbook_url", async () => {
    const { dir, groups } = await ruleFile();
    const check = await run(toolPath("promtool"), ["check", "rules", join(dir, "rules.yaml")]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const alerts = groups.groups.flatMap((g) => g.rules).filter((r) => r.alert);
    assert.deepEqual(alerts.map((a) => a.alert).sort(), [...DOCUMENTED_ALERTS].sort());
    for (const alert of alerts) {
      assert.match(alert.labels?.severity ?? "", /^(warning|critical)$/, alert.alert);
      assert.match(alert.annotations?.runbook_url ?? "", /^https:\/\/stageset\.projects\.metio\.wtf\/runbooks\/.+\/$/, alert.alert);
    }
  });

  test("promtool test rules: every alert fires on its synthetic series and stays quiet otherwise", async () => {
    const { dir } = await ruleFile();
    const result = await run(toolPath("promtool"), ["test", "rules", "alerts-test.yaml"], { cwd: dir });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    // Each documented alert is expected to fire somewhere in the fixture, and expected quiet somewhere.
    const fixture = parse(readFileSync(FIXTURE, "utf8")) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] };
    const cases = fixture.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of DOCUMENTED_ALERTS) {
      assert.ok(cases.some((c) => c.alertname === alert && c.exp_alerts.length > 0), `${alert} is shown firing`);
      assert.ok(cases.some((c) => c.alertname === alert && c.exp_alerts.length === 0), `${alert} is shown quiet`);
    }
  });

  test("the thresholds are the rules' thresholds: raised, the firing cases no longer fire", async () => {
    const { dir } = await ruleFile({
      "metrics.prometheusRule.thresholds.workqueueDepth": 100,
      "metrics.prometheusRule.thresholds.reconcileErrors": 1000,
      "metrics.prometheusRule.thresholds.reconcileLatencySeconds": 299.5,
    });
    const result = await run(toolPath("promtool"), ["test", "rules", "alerts-test.yaml"], { cwd: dir });
    assert.notEqual(result.code, 0);
    for (const alert of ["StageSetControllerWorkqueueDepthHigh", "StageSetReconcileErrorsHigh", "StageSetReconcileLatencyHigh"]) {
      assert.match(result.stdout + result.stderr, new RegExp(`alertname: ${alert}`), `${alert} stopped firing`);
    }
  });

  test("extraAlertLabels reach every alert, extraRules are appended, runbookBaseURL is the links' base", async () => {
    const { groups } = await ruleFile({
      "metrics.prometheusRule.extraAlertLabels": { team: "platform" },
      "metrics.prometheusRule.runbookBaseURL": "https://runbooks.internal/stageset/",
      "metrics.prometheusRule.extraRules": [{ alert: "Custom", expr: "vector(1)" }],
    });
    const rules = groups.groups.flatMap((g) => g.rules);
    for (const rule of rules.filter((r) => DOCUMENTED_ALERTS.includes(r.alert ?? ""))) {
      assert.equal(rule.labels?.team, "platform", rule.alert);
      assert.ok(rule.annotations?.runbook_url?.startsWith("https://runbooks.internal/stageset/"), rule.annotations?.runbook_url);
      assert.ok(!rule.annotations?.runbook_url?.includes("//stageset//"));
    }
    assert.equal(rules.at(-1)?.alert, "Custom");
  });

  test("the rules and the synthetic series name only metrics the controller exports, with its label names", async () => {
    const exported = await exportedSeries();
    const { groups } = await ruleFile();
    for (const rule of groups.groups.flatMap((g) => g.rules)) {
      const names = metricNames(rule.expr);
      assert.ok(names.length > 0, `${rule.alert}: no metric found in ${rule.expr}`);
      for (const name of names) assert.ok(EXTERNAL_METRICS.has(name) || exported.has(name), `${rule.alert} reads ${name}, which the controller does not export`);
    }
    const fixture = parse(readFileSync(FIXTURE, "utf8")) as { tests: { input_series: { series: string }[] }[] };
    for (const { series } of fixture.tests.flatMap((t) => t.input_series)) {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}$/.exec(series);
      assert.ok(match, series);
      const [, name, labelText] = match;
      if (EXTERNAL_METRICS.has(name!)) continue;
      const labels = exported.get(name!);
      assert.ok(labels, `the fixture's ${name} is not exported by the controller`);
      for (const [, label] of labelText!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) {
        assert.ok(labels.has(label!) || TARGET_LABELS.has(label!), `${name} has no label ${label} (exported: ${[...labels].join(", ")})`);
      }
      // The controller's own labels are all given, so the synthetic series has the exported shape.
      for (const label of labels) assert.match(labelText!, new RegExp(`\\b${label}="`), `${series} lacks ${label}`);
    }
  });
});

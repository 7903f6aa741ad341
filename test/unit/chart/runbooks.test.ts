// Runbooks: every actionable Ready reason (src/errors.ts) and every alert of
// the chart has a page under docs/runbooks/ with symptom, cause, diagnosis and
// remediation, and every runbook link the controller writes into a Ready
// message or the chart puts on an alert resolves to one of those pages
// (docs/runbooks/<page>.md is published at <base>/<page>/).
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { withRunbook } from "../../../src/controller/conditions.js";
import { HEALTHY_REASONS, Reasons, type Reason } from "../../../src/errors.js";
import { repoRoot } from "../../../src/util/tools.js";
import { CHART_DIR, mustFind, renderChart } from "../../support/helm.js";

const RUNBOOKS = join(repoRoot(), "docs", "runbooks");
const ACTIONABLE = (Object.values(Reasons) as Reason[]).filter((reason) => !HEALTHY_REASONS.has(reason));
const SECTIONS = ["## Symptom", "## Cause", "## Diagnosis", "## Remediation"];

/** The docs/runbooks page a link resolves to, or undefined when it is not under `base`. */
function pageOf(url: string, base: string): string | undefined {
  const prefix = `${base.replace(/\/+$/, "")}/`;
  if (!url.startsWith(prefix)) return undefined;
  const rest = url.slice(prefix.length);
  if (!/^[a-z0-9-]+\/$/.test(rest)) return undefined;
  return join(RUNBOOKS, `${rest.slice(0, -1)}.md`);
}

interface Rule {
  alert?: string;
  annotations?: Record<string, string>;
}

async function renderedAlerts(): Promise<Rule[]> {
  const objects = await renderChart({ release: "ss", namespace: "stageset-system", values: { "metrics.prometheusRule.enabled": true } });
  const spec = mustFind(objects, "PrometheusRule").spec as { groups: { rules: Rule[] }[] };
  return spec.groups.flatMap((g) => g.rules).filter((r) => r.alert);
}

function chartValues(): { controller: { runbookBaseURL: string }; metrics: { prometheusRule: { runbookBaseURL: string } } } {
  return parse(readFileSync(join(CHART_DIR, "values.yaml"), "utf8")) as ReturnType<typeof chartValues>;
}

describe("runbooks", () => {
  test("every actionable Ready reason has a page with symptom, cause, diagnosis (with commands) and remediation", () => {
    assert.ok(ACTIONABLE.length >= 16, `${ACTIONABLE.length} actionable reasons`);
    for (const reason of ACTIONABLE) {
      const file = join(RUNBOOKS, `${reason.toLowerCase()}.md`);
      assert.ok(existsSync(file), `docs/runbooks/${reason.toLowerCase()}.md is missing (reason ${reason})`);
      const text = readFileSync(file, "utf8");
      assert.ok(text.startsWith(`# ${reason}\n`), `${file} is titled with the reason`);
      let last = -1;
      for (const section of SECTIONS) {
        const at = text.indexOf(`\n${section}\n`);
        assert.ok(at > last, `${file}: ${section} missing or out of order`);
        last = at;
      }
      const diagnosis = text.slice(text.indexOf("\n## Diagnosis\n"), text.indexOf("\n## Remediation\n"));
      assert.match(diagnosis, /```shell\n[\s\S]*\b(kubectl|stagesetctl)\b/, `${file}: the diagnosis gives commands`);
    }
  });

  test("the healthy reasons have no page and get no link", () => {
    for (const reason of HEALTHY_REASONS) {
      assert.ok(!existsSync(join(RUNBOOKS, `${reason.toLowerCase()}.md`)), reason);
      assert.equal(withRunbook("fine", reason, chartValues().controller.runbookBaseURL), "fine");
    }
  });

  test("every link the controller appends with the chart's runbookBaseURL resolves to a page", () => {
    const base = chartValues().controller.runbookBaseURL;
    assert.equal(base, chartValues().metrics.prometheusRule.runbookBaseURL, "the controller and the alerts link the same site");
    for (const reason of ACTIONABLE) {
      const message = withRunbook("something failed", reason, base);
      const url = /\(runbook: (\S+)\)$/.exec(message)?.[1];
      assert.ok(url, message);
      const page = pageOf(url, base);
      assert.ok(page && existsSync(page), `${reason}: ${url} does not resolve to docs/runbooks/`);
    }
  });

  test("every alert has its page, and every runbook_url of the chart resolves to one (the reconcile-errors alert for every reason)", async () => {
    const base = chartValues().metrics.prometheusRule.runbookBaseURL;
    const alerts = await renderedAlerts();
    assert.equal(alerts.length, 5);
    for (const alert of alerts) {
      const name = alert.alert!;
      const own = join(RUNBOOKS, `${name.toLowerCase()}.md`);
      assert.ok(existsSync(own), `docs/runbooks/${name.toLowerCase()}.md is missing (alert ${name})`);
      const text = readFileSync(own, "utf8");
      assert.ok(text.startsWith(`# ${name}\n`), own);
      for (const section of SECTIONS) assert.ok(text.includes(`\n${section}\n`), `${own}: ${section}`);
      const url = alert.annotations?.runbook_url ?? "";
      if (url.includes("{{")) {
        // Prometheus fills in the reason of the series that fired: any reason the controller counts that is not healthy.
        assert.equal(url, `${base}/{{ $labels.reason | toLower }}/`);
        for (const reason of ACTIONABLE) {
          const page = pageOf(url.replace("{{ $labels.reason | toLower }}", reason.toLowerCase()), base);
          assert.ok(page && existsSync(page), `${name} for reason ${reason}`);
        }
      } else {
        assert.equal(pageOf(url, base), own, `${name}: ${url}`);
      }
    }
  });

  test("docs/runbooks holds only pages of reasons and alerts, and its index links each of them", async () => {
    const alerts = (await renderedAlerts()).map((a) => a.alert!.toLowerCase());
    const expected = new Set([...ACTIONABLE.map((r) => r.toLowerCase()), ...alerts]);
    const pages = readdirSync(RUNBOOKS).filter((name) => name.endsWith(".md") && name !== "README.md").map((name) => name.slice(0, -3));
    assert.deepEqual(pages.sort(), [...expected].sort());
    const index = readFileSync(join(RUNBOOKS, "README.md"), "utf8");
    for (const page of pages) assert.ok(index.includes(`](${page}.md)`), `the index links ${page}.md`);
    for (const [, target] of index.matchAll(/\]\(([^)#]+\.md)\)/g)) assert.ok(existsSync(join(RUNBOOKS, target!)), `the index links a missing ${target}`);
  });
});

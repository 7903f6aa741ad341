import assert from "node:assert/strict";
import { test } from "node:test";
import type { KubeObject, Stage } from "../../../src/api/types.js";
import type { StageChanges } from "../../../src/cli/changes.js";
import { painter } from "../../../src/cli/color.js";
import { renderDiffReport } from "../../../src/cli/diff-report.js";
import { EarlierStageCrds, notDryRunReason } from "../../../src/cli/earlier-stage-kinds.js";

function crd(group: string, kind: string, plural: string, versions: { name: string; served?: boolean }[]): KubeObject {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${group}` },
    spec: { group, scope: "Namespaced", names: { kind, plural }, versions },
  };
}

test("earlier stages' CRDs: which stage will serve a kind, by group, kind and a served version", () => {
  const earlier = new EarlierStageCrds();
  assert.equal(earlier.serving("monitoring.coreos.com/v1", "ServiceMonitor"), undefined);
  earlier.addStage("crds", [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "monitoring" } },
    crd("monitoring.coreos.com", "ServiceMonitor", "servicemonitors", [{ name: "v1" }, { name: "v1beta1", served: false }]),
  ]);
  earlier.addStage("more", [crd("monitoring.coreos.com", "PodMonitor", "podmonitors", [{ name: "v1" }])]);
  assert.equal(earlier.serving("monitoring.coreos.com/v1", "ServiceMonitor")?.stage, "crds");
  assert.equal(earlier.serving("monitoring.coreos.com/v1", "PodMonitor")?.crd.metadata.name, "podmonitors.monitoring.coreos.com");
  assert.equal(earlier.serving("monitoring.coreos.com/v1beta1", "ServiceMonitor"), undefined, "a version the CRD does not serve");
  assert.equal(earlier.serving("other.example/v1", "ServiceMonitor"), undefined, "another group");
});

test("the diff report marks a created object that was not dry-run, and why", () => {
  const stage: Stage = { name: "operator", sourceRef: { name: "operator" } };
  const monitor: KubeObject = { apiVersion: "monitoring.coreos.com/v1", kind: "ServiceMonitor", metadata: { name: "web", namespace: "apps" }, spec: { endpoints: [] } };
  const why = notDryRunReason("ServiceMonitor", "monitoring.coreos.com/v1", 'the CustomResourceDefinition servicemonitors.monitoring.coreos.com of stage "crds"');
  const changes: StageChanges[] = [
    { stage, index: 1, objects: [{ kind: "create", ref: { apiVersion: monitor.apiVersion, kind: monitor.kind, name: "web", namespace: "apps" }, merged: monitor, notDryRun: why }], pruned: [] },
  ];
  const report = renderDiffReport(changes, { showSecrets: false, showUnchanged: false, prune: true, paint: painter(false), stageStatus: new Map() });
  assert.ok(report.changed);
  assert.match(
    report.text,
    /^@@ ServiceMonitor\.monitoring\.coreos\.com apps\/web \(created, not dry-run: kind ServiceMonitor \(monitoring\.coreos\.com\/v1\) is installed by the CustomResourceDefinition servicemonitors\.monitoring\.coreos\.com of stage "crds", so the API server cannot check it yet\) @@\n\+apiVersion: monitoring\.coreos\.com\/v1\n\+kind: ServiceMonitor\n/m,
  );
});

// A 1000-object stage: the first apply and the no-op that follows. The times
// are reported, not asserted (benchmarks live under bench/); the no-op's
// zero writes are asserted.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { AppliedStateMemo } from "../../src/apply/drift.js";
import { applyStage } from "../../src/apply/engine.js";
import { KubeClient } from "../../src/kube/client.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";

function objects(count: number): KubeObject[] {
  const out: KubeObject[] = [];
  for (let i = 0; out.length < count; i++) {
    out.push({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `cfg-${i}` }, data: { index: String(i) } });
    if (out.length < count) {
      out.push({ apiVersion: "v1", kind: "Service", metadata: { name: `svc-${i}` }, spec: { selector: { app: `a${i}` }, ports: [{ port: 80, targetPort: 8080 }] } });
    }
    if (out.length < count) {
      out.push({
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: `web-${i}` },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: `a${i}` } },
          template: {
            metadata: { labels: { app: `a${i}` } },
            spec: { containers: [{ name: "web", image: "registry.example/web:1", resources: { requests: { cpu: "0.05", memory: "32Mi" } } }] },
          },
        },
      });
    }
  }
  return out;
}

test("a 1000-object stage: first apply, then a no-op without writes", async () => {
  const cluster = await testCluster();
  const client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  const ns = await createTestNamespace(cluster, "apply-scale");
  const stage = objects(1000);
  const memo = new AppliedStateMemo();
  const options = { client, stageSet: { name: "big", namespace: ns }, stage: "app", objects: stage, memo, concurrency: 16 };

  const statsStart = client.stats();
  let started = performance.now();
  const first = await applyStage(options);
  const firstMs = performance.now() - started;
  const statsFirst = client.stats();
  assert.equal(statsFirst.get - statsStart.get, 0, "new objects are found missing by one list per kind, not a get each");
  assert.equal(first.entries.filter((e) => e.action === "created").length, 1000);

  const writesBefore = client.writeCount();
  const statsBefore = client.stats();
  started = performance.now();
  const second = await applyStage(options);
  const noopMs = performance.now() - started;
  const statsAfter = client.stats();
  assert.equal(second.entries.filter((e) => e.action === "unchanged").length, 1000);
  assert.equal(client.writeCount() - writesBefore, 0);
  process.stderr.write(
    `[apply-scale] 1000 objects: first apply ${Math.round(firstMs)}ms (${statsFirst.apply - statsStart.apply} applies, ` +
      `${statsFirst.list - statsStart.list} lists), no-op ${Math.round(noopMs)}ms ` +
      `(${statsAfter.list - statsBefore.list} list requests, ${statsAfter.get - statsBefore.get} gets, 0 writes)\n`,
  );
});

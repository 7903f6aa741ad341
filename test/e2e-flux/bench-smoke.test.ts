// A fast smoke of the kustomize-controller benchmark harness (bench/,
// `make bench`): B1 with 50 objects and B2 for one round, ours (the binary,
// as its own process) beside Flux's kustomize-controller, and the B4 floor.
// It keeps the harness from rotting between `make bench` runs, and its
// correctness check stands as a test: a revision that drops a key from one
// object removes it from the live object for both controllers. The figures
// themselves mean little here (tests run in parallel on the shared control
// plane); only that they were measured.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { KubeObject, StageInventory } from "../../src/api/types.js";
import { kustomizeControllerBench } from "../../bench/kustomize-controller.js";
import { designFloor } from "../../bench/lib/floor.js";
import { KubeClient } from "../../src/kube/client.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";

test("bench smoke: B1/B2 at 50 objects against kustomize-controller, the dropped key removed by both, and the B4 floor", async () => {
  const cluster = await testCluster();
  const lines: string[] = [];
  const result = await kustomizeControllerBench(cluster, (line) => lines.push(line), {
    objects: 50,
    rounds: 1,
    scale: [],
    scaleRounds: 0,
    only: new Set(["b1", "b4"]),
    writeDocs: false,
    kcVariants: { KC: [] },
    // Other tests write to the shared control plane all the time: do not wait for the counts to settle.
    settle: { stableReads: 0 },
  });
  assert.deepEqual(result.correctness, { ours: [true], KC: [true] }, lines.join("\n"));
  const md = result.markdown.join("\n");
  for (const metric of ["B1 time to Ready (s)", "B1 API requests", "B1 CPU incl. children (s)", "B1 peak RSS (MiB)", "B2 no-op time (ms)", "B2 API requests"]) {
    const row = md.split("\n").find((l) => l.startsWith(`| ${metric} |`));
    assert.ok(row, `${metric} missing from\n${md}`);
    // ours, KC, then the ratio ours/KC: all measured (numbers, no NaN).
    assert.match(row, /^\| [^|]+ \| \d+(\.\d+)? \| \d+(\.\d+)? \| \d+\.\d+× \|$/, row);
  }
  // The floor, in a new process and in the benchmark's own, against our whole B1, and our apply phase
  // alone (read from our phase histogram: a real, non-zero figure) against the new process.
  const floorRow = (name: string) => {
    const row = md.split("\n").find((l) => l.startsWith(`| ${name} |`));
    assert.ok(row && /^\| [^|]+ \| \d+\.\d+ \| \d+\.\d+ \| \d+\.\d+× \|$/.test(row), `${name}: the floor, ours and ours/floor:\n${md}`);
    return row;
  };
  floorRow("B1 time to Ready, against the floor client in a new process (s)");
  floorRow("B1 time to Ready, against the floor client in the benchmark's warm process (s)");
  assert.doesNotMatch(floorRow("apply phase alone, against the new process (s)"), /\| 0\.00 \| [0-9.]+× \|$/, "our apply phase was measured");
  floorRow("the design's floor in a new process: kustomize build, StageInventory, labelled applies (s)");
  floorRow("B1 time to Ready, against the design's floor (s)");
  const design = /the design's floor in a new process (\d+\.\d+)s \(build (\d+\.\d+)s, inventory (\d+\.\d+)s\)/.exec(lines.join("\n"));
  assert.ok(design, `no round of the design's floor in\n${lines.join("\n")}`);
  assert.ok(Number(design[2]) > 0 && Number(design[3]) > 0, `the design's floor built and recorded: ${design[0]}`);
  assert.match(md, /Our B1 by phase .* build \(fetch, kustomize, parse\) \d+\.\d+s, apply \(with the inventory\) \d+\.\d+s, verify \d+\.\d+s/);
});

test("the design's floor (B4) builds the artifact, records all of it in a StageInventory, then applies every object with our labels", async () => {
  const cluster = await testCluster();
  const namespace = await createTestNamespace(cluster, "bench-design-floor");
  const client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  after(() => client.close());
  const result = await designFloor(client, namespace, 20, 10);
  assert.ok(result.buildSeconds > 0 && result.inventorySeconds > 0 && result.seconds > result.buildSeconds + result.inventorySeconds, JSON.stringify(result));
  const inventory = await client.get<StageInventory>({ apiVersion: "stages.metio.wtf/v1", kind: "StageInventory", namespace, name: "bulk-bulk-0" });
  assert.equal(inventory?.spec.entries.length, 20);
  assert.ok(inventory?.spec.entries.some((e) => e.id === `${namespace}_cm-0__ConfigMap` && e.v === "v1"), JSON.stringify(inventory?.spec.entries.slice(0, 3)));
  const cm0 = await client.get<KubeObject & { data?: Record<string, string> }>({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "cm-0" });
  assert.equal(cm0?.data?.removeme, "gone in revision 2");
  assert.deepEqual(
    Object.keys(cm0?.metadata.labels ?? {}).sort(),
    ["app", "applyset.kubernetes.io/part-of", "stages.metio.wtf/name", "stages.metio.wtf/namespace", "stages.metio.wtf/stage"],
  );
  const last = await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "cm-19" });
  assert.ok(last, "cm-19 applied");
});

// A fast smoke of the kustomize-controller benchmark harness (bench/,
// `make bench`): B1 with 50 objects and B2 for one round, ours (the binary,
// as its own process) beside Flux's kustomize-controller, and the B4 floor.
// It keeps the harness from rotting between `make bench` runs, and its
// correctness check stands as a test: a revision that drops a key from one
// object removes it from the live object for both controllers. The figures
// themselves mean little here (tests run in parallel on the shared control
// plane); only that they were measured.
import assert from "node:assert/strict";
import { test } from "node:test";
import { kustomizeControllerBench } from "../../bench/kustomize-controller.js";
import { testCluster } from "../support/cluster.js";

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
  assert.match(md, /Our B1 by phase .* build \(fetch, kustomize, parse\) \d+\.\d+s, apply \(with the inventory\) \d+\.\d+s, verify \d+\.\d+s/);
});

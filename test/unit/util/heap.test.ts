import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { repoRoot } from "../../../src/util/tools.js";

// A fresh process per setting: 50 MiB kept for the whole run, 400 batches of
// short-lived garbage that survives a few scavenges (as a reconcile's parsed
// answers do), and the old generation's peak size is the answer.
const heapModule = pathToFileURL(join(repoRoot(), "dist", "src", "util", "heap.js")).href;
const workload = (percent: number) => `
const { setHeapGrowth } = await import(${JSON.stringify(heapModule)});
setHeapGrowth(${percent});
const { getHeapSpaceStatistics } = await import("node:v8");
const kept = []; for (let i = 0; i < 300000; i++) kept.push({ a: "x" + i, b: [i, i + 1] });
let peak = 0; const recent = [];
for (let r = 0; r < 400; r++) {
  const batch = []; for (let i = 0; i < 20000; i++) batch.push({ s: "y" + i + r, n: [i] });
  recent.push(batch); if (recent.length > 8) recent.shift();
  const old = getHeapSpaceStatistics().find((s) => s.space_name === "old_space");
  peak = Math.max(peak, old.space_size);
}
process.stdout.write(String(peak));
`;

function oldSpacePeak(percent: number): number {
  return Number(execFileSync(process.execPath, ["--input-type=module", "-e", workload(percent)], { encoding: "utf8" }));
}

describe("setHeapGrowth", () => {
  it("bounds the old generation's growth past what survives, where V8's own heuristic lets it grow far more", () => {
    const v8Default = oldSpacePeak(0);
    const bounded = oldSpacePeak(50);
    assert.ok(bounded < v8Default * 0.75, `old space peaked at ${bounded} bytes with 50%, ${v8Default} with V8's heuristic`);
  });
});

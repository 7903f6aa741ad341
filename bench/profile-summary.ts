// Summarizes a V8 .cpuprofile (what `node --cpu-prof` writes; BENCH_CPU_PROF
// makes the kustomize-controller benchmark run our controller under it):
// where the samples fall by area of the code and by function, self time
// (the frame on top of the stack) and inclusive time.
//
//   node dist/bench/profile-summary.js FILE.cpuprofile [--top N]
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** The area a frame belongs to: our source folder, a dependency, or V8/Node internals. */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === "(idle)") return "(idle)";
    if (functionName === "(garbage collector)") return "(garbage collector)";
    if (functionName === "(program)") return "(program)";
    return "(native)";
  }
  const src = /\/dist\/src\/([^/]+)\//.exec(url) ?? /\/src\/([^/]+)\//.exec(url);
  if (src && !url.includes("node_modules")) return `src/${src[1]}`;
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dep) return `npm:${dep[1]}`;
  if (url.startsWith("node:internal/modules") || functionName === "compileSourceTextModule") return "(startup: module loading)";
  if (url.startsWith("node:internal/")) return `node:internal/${url.slice(14).split("/")[0]}`;
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0]}`;
  return url;
}

export interface Summary {
  totalMs: number;
  /** Each sample charged to the innermost frame of our own code on its stack (else its area). */
  byOurFrame: [string, number][];
  byArea: [string, number][];
  selfByFunction: [string, number][];
  inclusiveByFunction: [string, number][];
}

export function summarize(profile: Profile): Summary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Time per node from samples and timeDeltas (hitCount × average when absent).
  const selfMs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const next = deltas[i + 1] ?? 0;
    selfMs.set(samples[i]!, (selfMs.get(samples[i]!) ?? 0) + next / 1000);
  }
  const label = (f: CallFrame) => `${f.functionName || "(anonymous)"} ${f.url ? `${f.url.replace(/^.*\/(dist|node_modules)\//, "$1/")}:${f.lineNumber + 1}` : ""}`.trim();
  const byArea = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const ours = new Map<string, number>();
  const isOurs = (f: CallFrame) => areaOf(f).startsWith("src/");
  let totalMs = 0;
  for (const [id, ms] of selfMs) {
    const node = byId.get(id)!;
    totalMs += ms;
    byArea.set(areaOf(node.callFrame), (byArea.get(areaOf(node.callFrame)) ?? 0) + ms);
    self.set(label(node.callFrame), (self.get(label(node.callFrame)) ?? 0) + ms);
    let owner: string | undefined;
    for (let cur: number | undefined = id; cur !== undefined && owner === undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (isOurs(f)) owner = label(f);
    }
    owner ??= areaOf(node.callFrame);
    ours.set(owner, (ours.get(owner) ?? 0) + ms);
    // Inclusive: every distinct function on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!.callFrame);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + ms);
    }
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { totalMs, byOurFrame: sorted(ours), byArea: sorted(byArea), selfByFunction: sorted(self), inclusiveByFunction: sorted(inclusive).filter(([l]) => !l.startsWith("(")) };
}

function main(): void {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write("usage: profile-summary FILE.cpuprofile [--top N]\n");
    process.exit(2);
  }
  const topIndex = process.argv.indexOf("--top");
  const top = topIndex > 0 ? Number(process.argv[topIndex + 1]) : 20;
  const s = summarize(JSON.parse(readFileSync(file, "utf8")) as Profile);
  const busy = s.totalMs - (s.byArea.find(([a]) => a === "(idle)")?.[1] ?? 0);
  const pct = (ms: number) => `${((100 * ms) / busy).toFixed(1)}%`;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(`profile ${file}: ${(s.totalMs / 1000).toFixed(1)}s sampled, ${(busy / 1000).toFixed(1)}s not idle (percentages of that)`);
  out("\nby area (self time):");
  for (const [area, ms] of s.byArea.filter(([a]) => a !== "(idle)").slice(0, top)) out(`  ${pct(ms).padStart(6)}  ${(ms / 1000).toFixed(2).padStart(7)}s  ${area}`);
  out("\ncharged to the innermost frame of our code on the stack (time in libraries and Node counted to the caller of ours):");
  for (const [fn, ms] of s.byOurFrame.filter(([f]) => f !== "(idle)").slice(0, top)) out(`  ${pct(ms).padStart(6)}  ${(ms / 1000).toFixed(2).padStart(7)}s  ${fn}`);
  out("\ntop functions, self time:");
  for (const [fn, ms] of s.selfByFunction.filter(([f]) => !f.startsWith("(idle)")).slice(0, top)) out(`  ${pct(ms).padStart(6)}  ${(ms / 1000).toFixed(2).padStart(7)}s  ${fn}`);
  out("\ntop functions, inclusive time:");
  for (const [fn, ms] of s.inclusiveByFunction.slice(0, top)) out(`  ${pct(ms).padStart(6)}  ${(ms / 1000).toFixed(2).padStart(7)}s  ${fn}`);
}

if (process.argv[1]?.endsWith("profile-summary.js")) main();

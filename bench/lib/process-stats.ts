/**
 * CPU time and resident memory of a process and its descendants, read from
 * /proc (Linux). CPU counts the process's own user+system time, the time of
 * children it has already waited for (cutime/cstime: our controller's
 * kustomize builds are short-lived `kbuild` children, reaped by Node), and
 * the time of descendants still running at the moment of the reading. RSS is
 * sampled every `intervalMs` over the whole tree; the peak is kept.
 */
import { readdirSync, readFileSync } from "node:fs";

const CLOCK_TICKS = 100; // getconf CLK_TCK on Linux x86-64 and arm64
const PAGE_SIZE = 4096;

export interface Stat {
  pid: number;
  ppid: number;
  /** utime + stime, in ticks. */
  own: number;
  /** cutime + cstime, in ticks. */
  children: number;
  rssPages: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may hold spaces: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); field N is fields[N - 3].
  const num = (n: number) => Number(fields[n - 3]);
  return { pid, ppid: num(4), own: num(14) + num(15), children: num(16) + num(17), rssPages: num(24) };
}

/**
 * The process and every live descendant, found through each thread's
 * /proc/PID/task/TID/children (one small read per process in the tree)
 * rather than by reading every process's stat: the RSS sampler runs every
 * 100 ms during a measured phase, and scanning all of /proc took 3 ms of the
 * benchmark's CPU per sample on the two-core machine, competing with what
 * it measures. Falls back to the scan where that file is missing
 * (kernels without CONFIG_PROC_CHILDREN).
 */
export function tree(root: number): Stat[] {
  const rootStat = readStat(root);
  if (!rootStat) return [];
  const out = [rootStat];
  for (let i = 0; i < out.length; i++) {
    const children = childrenOf(out[i]!.pid);
    if (children === undefined) return scanTree(root);
    for (const pid of children) {
      const stat = readStat(pid);
      if (stat) out.push(stat);
    }
  }
  return out;
}

/** Child pids of every thread of `pid`; undefined when the kernel does not list them. */
function childrenOf(pid: number): number[] | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const tid of tasks) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" && tid === String(pid)) return undefined;
      continue; // the thread ended meanwhile
    }
    for (const field of text.split(" ")) if (field) children.push(Number(field));
  }
  return children;
}

/** The same as tree(), by reading the stat of every process on the machine. */
export function scanTree(root: number): Stat[] {
  const all: Stat[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) all.push(stat);
  }
  const byParent = new Map<number, Stat[]>();
  for (const s of all) byParent.set(s.ppid, [...(byParent.get(s.ppid) ?? []), s]);
  const rootStat = all.find((s) => s.pid === root);
  if (!rootStat) return [];
  const out = [rootStat];
  for (let i = 0; i < out.length; i++) out.push(...(byParent.get(out[i]!.pid) ?? []));
  return out;
}

/** CPU seconds used so far by the process, its reaped children and its live descendants. */
export function cpuSeconds(pid: number): number {
  const stats = tree(pid);
  if (stats.length === 0) return Number.NaN;
  const ticks = stats[0]!.own + stats[0]!.children + stats.slice(1).reduce((sum, s) => sum + s.own + s.children, 0);
  return ticks / CLOCK_TICKS;
}

/** Resident bytes of the process and its live descendants now. */
export function treeRssBytes(pid: number): number {
  return tree(pid).reduce((sum, s) => sum + s.rssPages * PAGE_SIZE, 0);
}

/** The process's own peak resident size (VmHWM), bytes. */
export function peakRssBytes(pid: number): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Samples the tree's RSS until stop(); returns the peak seen (bytes). */
export class RssSampler {
  #peak = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 100,
  ) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    this.#peak = Math.max(this.#peak, treeRssBytes(this.pid));
  }

  stop(): number {
    clearInterval(this.#timer);
    this.#sample();
    return this.#peak;
  }
}

/** CPU and memory over one measured phase. */
export class PhaseMeter {
  readonly #cpu0: number;
  readonly #rss: RssSampler;

  constructor(private readonly pid: number) {
    this.#cpu0 = cpuSeconds(pid);
    this.#rss = new RssSampler(pid);
  }

  /** CPU seconds since start, the peak tree RSS and the RSS now (bytes). */
  stop(): { cpuSeconds: number; peakRssBytes: number; rssBytes: number } {
    const peak = this.#rss.stop();
    return { cpuSeconds: cpuSeconds(this.pid) - this.#cpu0, peakRssBytes: peak, rssBytes: treeRssBytes(this.pid) };
  }
}

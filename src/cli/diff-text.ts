/**
 * A line diff (Myers' O(ND) algorithm) and unified-diff hunks, enough for
 * `stagesetctl diff` to show how an object's YAML changes.
 */

export type DiffOp = " " | "-" | "+";

export interface DiffLine {
  op: DiffOp;
  text: string;
}

export interface Hunk {
  /** 1-based first line in the old text (0 when the hunk only adds to an empty text). */
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  lines: DiffLine[];
}

// Past this many edits a minimal diff is not worth its memory: the middle is shown as replaced.
const MAX_EDIT_DISTANCE = 4000;

/** The edit script turning `a` into `b`: unchanged lines, removals and additions, removals first within a change. */
export function diffLines(a: readonly string[], b: readonly string[]): DiffLine[] {
  let prefix = 0;
  while (prefix < a.length && prefix < b.length && a[prefix] === b[prefix]) prefix++;
  let suffix = 0;
  while (suffix < a.length - prefix && suffix < b.length - prefix && a[a.length - 1 - suffix] === b[b.length - 1 - suffix]) suffix++;
  const middleA = a.slice(prefix, a.length - suffix);
  const middleB = b.slice(prefix, b.length - suffix);
  return [
    ...a.slice(0, prefix).map((text) => same(text)),
    ...(myers(middleA, middleB) ?? replaced(middleA, middleB)),
    ...a.slice(a.length - suffix).map((text) => same(text)),
  ];
}

/** Whether the script changes anything. */
export function hasChanges(lines: readonly DiffLine[]): boolean {
  return lines.some((line) => line.op !== " ");
}

/** Groups the changes of an edit script into hunks with `context` unchanged lines around each. */
export function toHunks(lines: readonly DiffLine[], context = 3): Hunk[] {
  const changed = lines.flatMap((line, i) => (line.op === " " ? [] : [i]));
  if (changed.length === 0) return [];
  const ranges: [number, number][] = [];
  for (const i of changed) {
    const start = Math.max(0, i - context);
    const end = Math.min(lines.length - 1, i + context);
    const last = ranges[ranges.length - 1];
    if (last && start <= last[1] + 1) last[1] = Math.max(last[1], end);
    else ranges.push([start, end]);
  }
  // Line numbers at each position of the script.
  const oldAt: number[] = [];
  const newAt: number[] = [];
  let oldLine = 1;
  let newLine = 1;
  for (const line of lines) {
    oldAt.push(oldLine);
    newAt.push(newLine);
    if (line.op !== "+") oldLine++;
    if (line.op !== "-") newLine++;
  }
  return ranges.map(([start, end]) => {
    const hunkLines = lines.slice(start, end + 1);
    const oldLines = hunkLines.filter((l) => l.op !== "+").length;
    const newLines = hunkLines.filter((l) => l.op !== "-").length;
    return {
      oldStart: oldLines === 0 ? oldAt[start]! - 1 : oldAt[start]!,
      oldLines,
      newStart: newLines === 0 ? newAt[start]! - 1 : newAt[start]!,
      newLines,
      lines: hunkLines,
    };
  });
}

function same(text: string): DiffLine {
  return { op: " ", text };
}

function replaced(a: readonly string[], b: readonly string[]): DiffLine[] {
  return [...a.map((text): DiffLine => ({ op: "-", text })), ...b.map((text): DiffLine => ({ op: "+", text }))];
}

/**
 * Myers' greedy shortest edit script. Keeps, per edit distance d, the
 * furthest-reaching x of each diagonal k ∈ [-d, d] (O(D²) memory) and walks
 * back through them. Undefined past MAX_EDIT_DISTANCE.
 */
function myers(a: readonly string[], b: readonly string[]): DiffLine[] | undefined {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) return replaced(a, b);
  const max = Math.min(n + m, MAX_EDIT_DISTANCE);
  // trace[d][k + d] = furthest x on diagonal k after d edits.
  const trace: Int32Array[] = [];
  let previous = new Int32Array(1);
  let done = false;
  for (let d = 0; d <= max && !done; d++) {
    const current = new Int32Array(2 * d + 1);
    for (let k = -d; k <= d; k += 2) {
      let x: number;
      if (d === 0) x = 0;
      else if (k === -d || (k !== d && at(previous, d - 1, k - 1) < at(previous, d - 1, k + 1))) x = at(previous, d - 1, k + 1);
      else x = at(previous, d - 1, k - 1) + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      current[k + d] = x;
      if (x >= n && y >= m) done = true;
    }
    trace.push(current);
    previous = current;
  }
  if (!done) return undefined;

  const script: DiffLine[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d > 0; d--) {
    const before = trace[d - 1]!;
    const k = x - y;
    const down = k === -d || (k !== d && at(before, d - 1, k - 1) < at(before, d - 1, k + 1));
    const prevK = down ? k + 1 : k - 1;
    const prevX = at(before, d - 1, prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      x--;
      y--;
      script.push(same(a[x]!));
    }
    if (down) script.push({ op: "+", text: b[--y]! });
    else script.push({ op: "-", text: a[--x]! });
  }
  while (x > 0 && y > 0) {
    x--;
    y--;
    script.push(same(a[x]!));
  }
  return orderRemovalsFirst(script.reverse());
}

function at(v: Int32Array, d: number, k: number): number {
  return v[k + d] ?? 0;
}

/** Within each run of changes, removals before additions, as unified diffs show them. */
function orderRemovalsFirst(script: DiffLine[]): DiffLine[] {
  const out: DiffLine[] = [];
  let run: DiffLine[] = [];
  const flush = () => {
    out.push(...run.filter((l) => l.op === "-"), ...run.filter((l) => l.op === "+"));
    run = [];
  };
  for (const line of script) {
    if (line.op === " ") {
      flush();
      out.push(line);
    } else run.push(line);
  }
  flush();
  return out;
}

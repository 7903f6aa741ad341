import assert from "node:assert/strict";
import { test } from "node:test";
import { diffLines, hasChanges, toHunks } from "../../../src/cli/diff-text.js";

function apply(lines: ReturnType<typeof diffLines>) {
  return {
    before: lines.filter((l) => l.op !== "+").map((l) => l.text),
    after: lines.filter((l) => l.op !== "-").map((l) => l.text),
  };
}

test("the edit script reproduces both texts and is minimal", () => {
  const rng = (() => {
    let seed = 42;
    return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  })();
  const random = (n: number) => Array.from({ length: n }, () => String(Math.floor(rng() * 4)));
  for (let t = 0; t < 500; t++) {
    const a = random(Math.floor(rng() * 12));
    const b = random(Math.floor(rng() * 12));
    const script = diffLines(a, b);
    assert.deepEqual(apply(script), { before: a, after: b });
    const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
    for (let i = a.length - 1; i >= 0; i--)
      for (let j = b.length - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    assert.equal(script.filter((l) => l.op !== " ").length, a.length + b.length - 2 * lcs[0]![0]!);
  }
});

test("a changed line shows as a removal then an addition", () => {
  const script = diffLines(["spec:", "  replicas: 3", "  paused: false"], ["spec:", "  replicas: 6", "  paused: false"]);
  assert.deepEqual(script, [
    { op: " ", text: "spec:" },
    { op: "-", text: "  replicas: 3" },
    { op: "+", text: "  replicas: 6" },
    { op: " ", text: "  paused: false" },
  ]);
  assert.ok(hasChanges(script));
  assert.ok(!hasChanges(diffLines(["a"], ["a"])));
});

test("hunks keep three lines of context and split distant changes", () => {
  const before = "abcdefghijklmnop".split("");
  const after = [...before];
  after[1] = "B";
  after[14] = "O";
  const hunks = toHunks(diffLines(before, after));
  assert.equal(hunks.length, 2);
  assert.deepEqual(
    hunks.map((h) => [h.oldStart, h.oldLines, h.newStart, h.newLines]),
    [
      [1, 5, 1, 5],
      [12, 5, 12, 5],
    ],
  );
  assert.equal(toHunks(diffLines(before, before)).length, 0);
});

test("adding to an empty text is one hunk of additions", () => {
  const hunks = toHunks(diffLines([], ["a", "b"]));
  assert.equal(hunks.length, 1);
  assert.deepEqual(hunks[0]!.lines.map((l) => l.op), ["+", "+"]);
  assert.equal(hunks[0]!.oldStart, 0);
});

test("very different long texts fall back to replace-all instead of exhausting memory", () => {
  const a = Array.from({ length: 5000 }, (_, i) => `a${i}`);
  const b = Array.from({ length: 5000 }, (_, i) => `b${i}`);
  const script = diffLines(a, b);
  assert.deepEqual(apply(script), { before: a, after: b });
});

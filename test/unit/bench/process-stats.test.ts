import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { scanTree, tree, treeRssBytes } from "../../../bench/lib/process-stats.js";
import { waitFor } from "../../support/wait.js";

test("the benchmark's process tree: found through /proc children as by a scan of every process, grandchildren included", async () => {
  // sh with two children of its own: a process tree three levels deep counting this one.
  const shell = spawn("sh", ["-c", "sleep 30 & sleep 30 & wait"], { stdio: "ignore", detached: true });
  try {
    const pids = (stats: { pid: number }[]) => stats.map((s) => s.pid).sort((a, b) => a - b);
    await waitFor(() => tree(shell.pid!).length === 3, { description: "sh and its two sleeps", timeoutMs: 10_000, intervalMs: 10 });
    assert.deepEqual(pids(tree(shell.pid!)), pids(scanTree(shell.pid!)));
    const mine = pids(tree(process.pid));
    for (const pid of pids(tree(shell.pid!))) assert.ok(mine.includes(pid), `${pid} is a descendant of this process`);
    assert.ok(treeRssBytes(shell.pid!) > 0);
  } finally {
    process.kill(-shell.pid!, "SIGKILL"); // the whole group: no sleep outlives the test
  }
  assert.deepEqual(tree(2 ** 22 + 1), [], "a process that does not exist has no tree");
});

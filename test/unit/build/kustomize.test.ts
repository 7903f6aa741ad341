import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KustomizeFailure, runKustomize } from "../../../src/build/kustomize.js";
import { repoRoot } from "../../../src/util/tools.js";
import { waitFor } from "../../support/wait.js";

const fixtures = join(repoRoot(), "test", "fixtures", "build");

describe("runKustomize", () => {
  let scratch: string;
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "stageset-kustomize-test-"));
  });
  after(() => rm(scratch, { recursive: true, force: true }));

  /** A stand-in executable for the process-control cases kustomize cannot be made to hit on purpose. */
  async function script(name: string, body: string): Promise<string> {
    const path = join(scratch, name);
    await writeFile(path, `#!/bin/sh\n${body}\n`);
    await chmod(path, 0o755);
    return path;
  }

  it("returns the rendered YAML of a kustomization", async () => {
    const out = await runKustomize(join(fixtures, "overlay", "base"), scratch);
    assert.match(out, /kind: Deployment/);
  });

  it("reports kustomize's own message on failure", async () => {
    await assert.rejects(runKustomize(join(fixtures, "plain"), scratch), (err: unknown) => err instanceof KustomizeFailure && !err.stopped && /kustomization/i.test(err.message));
  });

  it("runs the binary with an empty environment apart from HOME and TMPDIR", async () => {
    process.env["STAGESET_TEST_LEAK"] = "must-not-leak";
    try {
      const out = await runKustomize(scratch, scratch, { binary: await script("print-env", "env") });
      const env = out.trim().split("\n").map((line) => line.split("=")[0]).filter((name) => name !== "PWD" && name !== "SHLVL" && name !== "_").sort();
      assert.deepEqual(env, ["HOME", "TMPDIR"]);
    } finally {
      delete process.env["STAGESET_TEST_LEAK"];
    }
  });

  it("kills a build that runs past the timeout", async () => {
    const started = Date.now();
    await assert.rejects(
      runKustomize(scratch, scratch, { binary: await script("hang", "exec sleep 30"), timeoutMs: 300 }),
      (err: unknown) => err instanceof KustomizeFailure && err.stopped && /did not finish within/.test(err.message),
    );
    assert.ok(Date.now() - started < 10_000);
  });

  it("stops when the signal aborts", async () => {
    const controller = new AbortController();
    const started = join(scratch, "hang2.started");
    const run = runKustomize(scratch, scratch, { binary: await script("hang2", `touch ${started}\nexec sleep 30`), signal: controller.signal });
    // Abort while the process runs: once it has left its mark.
    await waitFor(() => existsSync(started), { description: "the build process to start", timeoutMs: 10_000, intervalMs: 10 });
    controller.abort();
    await assert.rejects(run, (err: unknown) => err instanceof KustomizeFailure && err.stopped && /cancelled/.test(err.message));
  });

  it("refuses output beyond the cap", async () => {
    await assert.rejects(
      runKustomize(scratch, scratch, { binary: await script("flood", "yes kind: X | head -c 100000"), maxOutputBytes: 1000 }),
      (err: unknown) => err instanceof KustomizeFailure && /exceeds 1000 bytes/.test(err.message),
    );
  });

  it("explains a missing binary", async () => {
    await assert.rejects(runKustomize(scratch, scratch, { binary: join(scratch, "absent") }), /not found; run hack\/tools.sh or set STAGESET_KUSTOMIZE_BIN/);
  });
});

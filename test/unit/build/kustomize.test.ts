import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KustomizeFailure, runKustomize, summarizeStderr } from "../../../src/build/kustomize.js";
import { repoRoot } from "../../../src/util/tools.js";
import { waitFor } from "../../support/wait.js";

const fixtures = join(repoRoot(), "test", "fixtures", "build");

describe("runKustomize", () => {
  let scratch: string;
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "stageset-kustomize-test-"));
  });
  after(() => rm(scratch, { recursive: true, force: true }));

  /** A stand-in executable for the process-control cases the build cannot be made to hit on purpose. */
  async function script(name: string, body: string): Promise<string> {
    const path = join(scratch, name);
    await writeFile(path, `#!/bin/sh\n${body}\n`);
    await chmod(path, 0o755);
    return path;
  }

  it("returns the rendered YAML of a kustomization", async () => {
    const out = await runKustomize(join(fixtures, "overlay"), join(fixtures, "overlay", "base"));
    assert.match(out, /kind: Deployment/);
  });

  it("builds with the kustomization given on stdin instead of the one on disk", async () => {
    const out = await runKustomize(join(fixtures, "overlay"), join(fixtures, "overlay", "base"), {
      kustomization: { name: "kustomization.yaml", text: "resources:\n- deployment.yaml\nnamePrefix: given-\n" },
    });
    assert.match(out, /name: given-/);
  });

  it("replaces the contents of artifact files given in memory (decrypted files never touch disk), with the kustomization", async () => {
    const root = await mkdtemp(join(scratch, "overlay-files-"));
    await writeFile(join(root, "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {v: ENC[ciphertext]}\n");
    await writeFile(join(root, "kustomization.yaml"), "resources: [cm.yaml]\n");
    const files = new Map([["cm.yaml", Buffer.from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {v: plaintext}\n")]]);
    const out = await runKustomize(root, root, { files, kustomization: { name: "kustomization.yaml", text: "resources: [cm.yaml]\nnamePrefix: p-\n" } });
    assert.match(out, /v: plaintext/);
    assert.match(out, /name: p-cm/);
    await assert.rejects(runKustomize(root, root, { files: new Map([["../outside.yaml", Buffer.from("x")]]) }), /resolves outside the artifact/);
    await assert.rejects(runKustomize(root, root, { files: new Map([["missing.yaml", Buffer.from("x")]]) }), /no such file in the artifact/);
  });

  it("reports the build's own message on failure", async () => {
    await assert.rejects(runKustomize(join(fixtures, "plain"), join(fixtures, "plain")), (err: unknown) => err instanceof KustomizeFailure && !err.stopped && /kustomization/i.test(err.message));
  });

  it("runs the binary with an empty environment apart from GOTRACEBACK=none", async () => {
    process.env["STAGESET_TEST_LEAK"] = "must-not-leak";
    try {
      const out = await runKustomize(scratch, scratch, { binary: await script("print-env", "env") });
      const env = out.trim().split("\n").filter((line) => !/^(PWD|SHLVL|_)=/.test(line)).sort();
      assert.deepEqual(env, ["GOTRACEBACK=none"]);
    } finally {
      delete process.env["STAGESET_TEST_LEAK"];
    }
  });

  it("passes the memory budget, the kustomization name, the root and the directory", async () => {
    const out = await runKustomize(scratch, join(scratch, "dir"), {
      binary: await script("print-args", 'for a in "$@"; do echo "$a"; done; cat'),
      maxMemoryBytes: 1234567,
      kustomization: { name: "Kustomization", text: "from stdin" },
    });
    assert.deepEqual(out.trim().split("\n"), ["--max-memory=1234567", "--kustomization=Kustomization", "--", scratch, join(scratch, "dir"), "from stdin"]);
  });

  it("reports exceeding the memory budget as stopped, in one line", async () => {
    await assert.rejects(
      runKustomize(scratch, scratch, { binary: await script("oom", "echo 'Error: the build exceeded its memory limit of 1 MiB' >&2; exit 3") }),
      (err: unknown) => err instanceof KustomizeFailure && err.stopped && err.message === "the build exceeded its memory limit of 1 MiB",
    );
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
    await assert.rejects(runKustomize(scratch, scratch, { binary: join(scratch, "absent") }), /not found; run hack\/tools.sh or set STAGESET_KBUILD_BIN/);
  });
});

describe("summarizeStderr", () => {
  const dump = (first: string) => `${first}\n\nruntime stack:\nruntime.throw({0xad7693?, 0x6ed00?})\n\truntime/panic.go:1229 +0x48\n\ngoroutine 1 gp=0x1 m=0 [running]:\nmain.main()\n`;

  it("keeps kbuild's Error line and drops kustomize's warnings", () => {
    assert.equal(summarizeStderr("# Warning: 'commonLabels' is deprecated.\nError: refused to read \"x\"\n"), 'refused to read "x"');
  });

  it("turns Go runtime failures into one line without the stack", () => {
    const cases: [string, RegExp][] = [
      ["runtime: goroutine stack exceeds 268435456-byte limit\nruntime: sp=0x1 stack=[0x1, 0x2]\nfatal error: stack overflow", /^the build input is nested too deeply/],
      ["fatal error: runtime: out of memory", /^the build exceeded its memory limit of 1024 MiB/],
      ["runtime: out of memory: cannot allocate 4194304-byte block (1073741824 in use)\nfatal error: out of memory", /^the build exceeded its memory limit/],
      ["panic: assignment to entry in nil map", /^the build failed unexpectedly: assignment to entry in nil map$/],
    ];
    for (const [first, expected] of cases) {
      const line = summarizeStderr(dump(first));
      assert.match(line, expected);
      assert.ok(!line.includes("goroutine") && !line.includes("runtime.throw") && !line.includes("\n"), line);
    }
  });
});

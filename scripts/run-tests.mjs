#!/usr/bin/env node
// The test command (`npm test` runs it after `tsc`). Runs the compiled unit
// tests, then starts ONE local control plane and runs every other tier
// (integration, e2e) against it in parallel, each test in its own namespace.
//
//   node scripts/run-tests.mjs                       # everything
//   node scripts/run-tests.mjs unit                  # only files whose path contains "unit"
//   node scripts/run-tests.mjs integration/apply foo # several filters, any may match
//
// Environment:
//   STAGESET_TEST_KUBECONFIG   use this running cluster (e.g. `make cluster-up`) instead of starting one
//   STAGESET_TEST_CONCURRENCY  parallel test files against the cluster (default 4)
//   STAGESET_TEST_TIMEOUT_MS   per-test timeout (default 300000)
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const distTest = join(root, "dist", "test");
const concurrency = process.env.STAGESET_TEST_CONCURRENCY ?? "4";
/**
 * Test files that run several processes of their own (controller binaries,
 * Flux controllers, helm): on a two-core machine four of them at once starve
 * each other past their time budgets, so they run after the others, one at
 * a time. Measured: with them in the parallel group a fresh-clone run had
 * five 300 s file timeouts at load 18; alone each passes in 15-120 s.
 */
const HEAVY = ["integration/actions-chaos", "integration/ha.", "integration/chart-", "integration/flux-events", "integration/migrations", "e2e-flux/"];
const isHeavy = (file) => HEAVY.some((part) => relative(distTest, file).split(sep).join("/").includes(part));
const testTimeoutMs = process.env.STAGESET_TEST_TIMEOUT_MS ?? "300000";

function listTests(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((path) => path.endsWith(".test.js"))
    .sort()
    .map((path) => join(dir, path));
}

function matchesFilters(file, filters) {
  if (filters.length === 0) return true;
  const rel = relative(distTest, file).split(sep).join("/");
  return filters.some((filter) => rel.includes(filter.replace(/^(dist\/)?test\//, "").replace(/\.(test\.)?[tj]s$/, "")));
}

// Totals over every tier, read from a TAP copy of each run's report, for the
// one closing line CI reads ("N passed, N failed").
const totals = { pass: 0, fail: 0, skipped: 0 };
const tapDir = mkdtempSync(join(tmpdir(), "stageset-tests-"));
let tapRuns = 0;

function addTotals(tapFile) {
  if (!existsSync(tapFile)) return;
  const text = readFileSync(tapFile, "utf8");
  for (const key of Object.keys(totals)) {
    const match = new RegExp(`^# ${key} (\\d+)$`, "m").exec(text);
    if (match) totals[key] += Number(match[1]);
  }
}

function runNodeTest(files, extraArgs, env) {
  const tapFile = join(tapDir, `run-${tapRuns++}.tap`);
  return new Promise((resolveRun) => {
    const child = spawn(
      process.execPath,
      [
        "--test",
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
        "--test-reporter=tap",
        `--test-reporter-destination=${tapFile}`,
        `--test-timeout=${testTimeoutMs}`,
        ...extraArgs,
        ...files,
      ],
      { stdio: "inherit", env: { ...process.env, ...env } },
    );
    currentChild = child;
    child.once("exit", (code, signal) => {
      currentChild = undefined;
      addTotals(tapFile);
      resolveRun(code === 0 && signal === null);
    });
  });
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;
let currentChild;
let controlPlane;
let interrupted = false;

// First signal: stop the running tests, then main() stops the control plane and
// exits. A second one exits at once; the control plane's watchdog reaps it.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`\n[run-tests] ${signal}: stopping the tests and the control plane`);
    currentChild?.kill("SIGTERM");
  });
}

// The control plane's data dir goes with it; after a failed run its component
// logs are copied to .tools/last-failed-run/ for the post-mortem.
function keepComponentLogs() {
  if (!controlPlane) return;
  const target = join(root, ".tools", "last-failed-run");
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  for (const name of readdirSync(controlPlane.dataDir)) {
    if (name.endsWith(".log")) cpSync(join(controlPlane.dataDir, name), join(target, name));
  }
  console.error(`[run-tests] control-plane component logs kept in ${target}`);
}

async function main() {
  if (!existsSync(distTest)) {
    console.error(`[run-tests] ${distTest} does not exist; compile first with \`npm run build\` (or use \`npm test\`)`);
    return 1;
  }
  const filters = process.argv.slice(2);
  const selected = listTests(distTest).filter((file) => matchesFilters(file, filters));
  const unit = selected.filter((file) => relative(distTest, file).startsWith(`unit${sep}`));
  const clustered = selected.filter((file) => !unit.includes(file));
  if (selected.length === 0) {
    console.error(`[run-tests] no compiled test files under ${distTest} match ${filters.join(", ") || "(all)"}`);
    return 1;
  }

  const failures = [];
  const runStarted = Date.now();
  if (unit.length > 0) {
    const started = Date.now();
    console.log(`[run-tests] unit: ${unit.length} file(s)`);
    if (!(await runNodeTest(unit, [], {}))) failures.push("unit");
    if (interrupted) return 130;
    console.log(`[run-tests] unit tests took ${seconds(Date.now() - started)}`);
  }

  if (clustered.length > 0 && !interrupted) {
    let kubeconfigPath = process.env.STAGESET_TEST_KUBECONFIG;
    if (kubeconfigPath) {
      console.log(`[run-tests] using the running cluster of STAGESET_TEST_KUBECONFIG=${kubeconfigPath}`);
    } else {
      const { startControlPlane } = await import(
        pathToFileURL(join(root, "dist", "test", "support", "controlplane", "controlplane.js")).href
      );
      const started = Date.now();
      try {
        controlPlane = await startControlPlane({ log: (line) => console.log(`[controlplane] ${line}`) });
      } catch (err) {
        console.error(`[run-tests] ${err instanceof Error ? err.message : err}`);
        return 1;
      }
      kubeconfigPath = controlPlane.kubeconfigPath;
      console.log(`[run-tests] control plane started in ${seconds(Date.now() - started)}`);
    }
    try {
      if (interrupted) return 130;
      const started = Date.now();
      const light = clustered.filter((file) => !isHeavy(file));
      const heavy = clustered.filter(isHeavy);
      const env = { STAGESET_TEST_KUBECONFIG: kubeconfigPath };
      console.log(`[run-tests] cluster tests: ${light.length} file(s), concurrency ${concurrency}; then ${heavy.length} process-heavy file(s) one at a time`);
      let passed = light.length === 0 || (await runNodeTest(light, [`--test-concurrency=${concurrency}`], env));
      if (heavy.length > 0 && !interrupted) passed = (await runNodeTest(heavy, ["--test-concurrency=1"], env)) && passed;
      if (interrupted) return 130;
      if (!passed) {
        failures.push("integration");
        keepComponentLogs();
      }
      console.log(`[run-tests] cluster tests took ${seconds(Date.now() - started)}`);
      const failed = controlPlane?.failedComponent();
      if (failed !== undefined) {
        console.error(`[run-tests] a control-plane component died during the run: ${failed}`);
        failures.push("control plane");
      }
    } finally {
      await controlPlane?.stop();
    }
  }

  console.log(`[run-tests] total ${seconds(Date.now() - runStarted)}`);
  rmSync(tapDir, { recursive: true, force: true });
  console.log(`${totals.pass} passed, ${totals.fail} failed${totals.skipped ? `, ${totals.skipped} skipped` : ""}`);
  if (failures.length > 0) {
    console.error(`[run-tests] FAILED: ${failures.join(", ")}`);
    return 1;
  }
  return 0;
}

process.exitCode = await main();

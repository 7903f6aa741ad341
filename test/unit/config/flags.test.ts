import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { FlagError, parseControllerFlags } from "../../../src/config/flags.js";

test("defaults match the configuration reference", () => {
  const c = parseControllerFlags([], {});
  assert.equal(c.metricsBindAddress, ":8080");
  assert.equal(c.healthProbeBindAddress, ":8081");
  assert.equal(c.gateBindAddress, ":8082");
  assert.equal(c.leaderElect, false);
  assert.equal(c.defaultIntervalMs, 600_000);
  assert.equal(c.inventoryMode, "hybrid");
  assert.equal(c.inventoryShardCap, 5000);
  assert.equal(c.concurrentBuilds, 1);
  assert.equal(c.heapGrowthPercent, 100);
  assert.equal(c.noCrossNamespaceRefs, false);
  assert.deepEqual(c.allowedActionHosts, []);
  assert.deepEqual(c.watchNamespaces, []);
  assert.equal(c.webhook.enabled, true);
  assert.equal(c.webhook.certMode, "cert-manager");
  assert.equal(c.webhook.port, 9443);
  assert.equal(c.webhook.certValidityMs, 8760 * 3_600_000);
  assert.equal(c.rollbackStore.s3.sse, "s3");
  assert.equal(c.rollbackStore.s3.useSSL, true);
  assert.equal(c.logLevel, "info");
  assert.equal(c.logEncoding, "json");
});

test("watch namespaces come from the flag, else STAGESET_WATCH_NAMESPACES", () => {
  assert.deepEqual(parseControllerFlags([], { STAGESET_WATCH_NAMESPACES: "a, b" }).watchNamespaces, ["a", "b"]);
  assert.deepEqual(parseControllerFlags(["--watch-namespaces=c"], { STAGESET_WATCH_NAMESPACES: "a" }).watchNamespaces, ["c"]);
  assert.throws(() => parseControllerFlags(["--watch-namespaces", "Bad_NS"], {}), /--watch-namespaces: "Bad_NS"/);
});

test("Go-style booleans: bare, =true and =false", () => {
  assert.equal(parseControllerFlags(["--leader-elect"], {}).leaderElect, true);
  assert.equal(parseControllerFlags(["--leader-elect=false"], {}).leaderElect, false);
  assert.equal(parseControllerFlags([], {}).leaderElectionReleaseOnCancel, false, "the Lease is kept on shutdown by default (documented)");
  assert.equal(parseControllerFlags(["--leader-election-release-on-cancel"], {}).leaderElectionReleaseOnCancel, true);
  assert.equal(parseControllerFlags(["--no-cross-namespace-refs"], {}).noCrossNamespaceRefs, true);
  assert.equal(parseControllerFlags(["--no-cross-namespace-refs=false"], {}).noCrossNamespaceRefs, false);
  assert.equal(parseControllerFlags(["--enable-webhook=false"], {}).webhook.enabled, false);
});

test("repeatable and comma-separated list flags", () => {
  const c = parseControllerFlags(["--allowed-action-hosts", "*.example.com", "--allowed-action-hosts=a.io,b.io"], {});
  assert.deepEqual(c.allowedActionHosts, ["*.example.com", "a.io", "b.io"]);
});

test("logging flags and their controller-runtime aliases", () => {
  const c = parseControllerFlags(["--log-level", "debug", "--log-encoding", "console"], {});
  assert.equal(c.logLevel, "debug");
  assert.equal(c.logEncoding, "console");
  assert.equal(parseControllerFlags(["--zap-log-level", "error"], {}).logLevel, "error");
});

const bad: [string[], RegExp][] = [
  [["--default-interval", "10"], /--default-interval wants a duration/],
  [["--inventory-shard-cap", "0"], /--inventory-shard-cap wants a whole number/],
  [["--concurrent-builds", "0"], /--concurrent-builds wants a whole number of at least 1/],
  [["--heap-growth-percent", "-5"], /--heap-growth-percent wants a whole number of at least 0/],
  [["--inventory-mode", "list"], /Allowed choices are entries, hybrid, applyset/],
  [["--metrics-bind-address", "localhost"], /--metrics-bind-address wants host:port/],
  [["--log-level", "loud"], /Allowed choices are trace, debug, info, warn, error/],
  [["--runbook-base-url", "runbooks"], /--runbook-base-url wants an http\(s\) URL/],
  [["--rollback-store-path", "/x", "--rollback-store-s3-endpoint", "s3:9000", "--rollback-store-s3-bucket", "b"], /mutually exclusive/],
  [["--rollback-store-s3-endpoint", "s3:9000"], /--rollback-store-s3-bucket must be set together/],
  [["--webhook-cert-mode", "self-signed"], /--webhook-validating-config-name is required/],
  [["--leader-election-renew-deadline", "20s"], /renew-deadline must be shorter/],
  [["--no-cross-namespace-refs=maybe"], /'--no-cross-namespace-refs' argument 'maybe' is invalid/],
  [["--frobnicate"], /unknown option '--frobnicate'/],
];
for (const [argv, message] of bad) {
  test(`rejects ${argv.join(" ")}`, () => {
    assert.throws(() => parseControllerFlags(argv, {}), (err: unknown) => err instanceof FlagError && message.test(err.message));
  });
}

test("the binary exits 2 on a bad flag, naming it", () => {
  const result = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts", "--concurrent", "many"], { encoding: "utf8" });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /--concurrent wants a whole number of at least 1, got "many"/);
});

test("--help lists every flag, none of them marked pending", () => {
  const result = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts", "--help"], { encoding: "utf8" });
  assert.equal(result.status, 0);
  for (const flag of ["--watch-namespaces", "--no-cross-namespace-refs", "--rollback-store-s3-sse", "--webhook-cert-mode", "--gate-bind-address", "--log-encoding"]) {
    assert.ok(result.stdout.includes(flag), `${flag} in --help`);
  }
  assert.doesNotMatch(result.stdout, /takes effect once the feature lands/, "every flag is honoured");
});

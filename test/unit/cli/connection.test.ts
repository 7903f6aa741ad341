import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { buildKubeConfig, Connection, requestTimeoutMs } from "../../../src/cli/connection.js";
import { UsageError } from "../../../src/cli/errors.js";
import { normalizeBooleans } from "../../../src/cli/program.js";

const kubeconfig = (() => {
  const dir = mkdtempSync(join(tmpdir(), "cli-conn-"));
  const path = join(dir, "config");
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
current-context: dev
clusters:
  - name: dev-cluster
    cluster: { server: "https://dev.example:6443" }
  - name: prod-cluster
    cluster: { server: "https://prod.example:6443" }
users:
  - name: dev-user
    user: { token: dev-token }
contexts:
  - name: dev
    context: { cluster: dev-cluster, user: dev-user, namespace: team-a }
  - name: prod
    context: { cluster: prod-cluster, user: dev-user }
`,
  );
  return path;
})();

test("the namespace comes from -n, else the context, else default", () => {
  assert.equal(new Connection({ kubeconfig }).namespace, "team-a");
  assert.equal(new Connection({ kubeconfig, namespace: "other" }).namespace, "other");
  assert.equal(new Connection({ kubeconfig, context: "prod" }).namespace, "default");
  assert.equal(new Connection({ kubeconfig: "/does/not/exist" }).namespace, "default");
});

test("connection flags override the kubeconfig's cluster and user", () => {
  const kc = buildKubeConfig({ kubeconfig, context: "prod", server: "https://override:6443", token: "t0k3n", insecureSkipTlsVerify: true });
  assert.equal(kc.getCurrentCluster()?.server, "https://override:6443");
  assert.equal(kc.getCurrentCluster()?.skipTLSVerify, true);
  assert.equal(kc.getCurrentUser()?.token, "t0k3n");
  assert.equal(buildKubeConfig({ kubeconfig, context: "prod" }).getCurrentCluster()?.server, "https://prod.example:6443");
});

test("an unknown context is a usage error listing the known ones", () => {
  assert.throws(() => buildKubeConfig({ kubeconfig, context: "staging" }), (err: unknown) => err instanceof UsageError && /use one of: dev, prod/.test(err.message));
});

test("--request-timeout takes seconds, durations and 0", () => {
  assert.equal(requestTimeoutMs("5"), 5000);
  assert.equal(requestTimeoutMs("1m"), 60_000);
  assert.ok(requestTimeoutMs("0")! > 24 * 3600_000);
  assert.equal(requestTimeoutMs(undefined), undefined);
  assert.throws(() => requestTimeoutMs("soon"), /use seconds \(30\), a duration/);
});

test("boolean flags accept =true and =false like kubectl's", () => {
  assert.deepEqual(normalizeBooleans(["diff", "--server-side=false", "--prune=true", "--color=never", "--", "--x=false"]), [
    "diff",
    "--no-server-side",
    "--prune",
    "--color=never",
    "--",
    "--x=false",
  ]);
  assert.throws(() => normalizeBooleans(["--exit-code=maybe"]), /--exit-code takes true or false/);
});

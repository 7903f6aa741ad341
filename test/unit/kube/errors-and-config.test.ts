import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Reasons, StageSetError } from "../../../src/errors.js";
import { KubeClient, serviceAccountIdentity } from "../../../src/kube/client.js";
import { groupVersionPath, parseApiVersion } from "../../../src/kube/discovery.js";
import {
  isAlreadyExists,
  isConflict,
  isForbidden,
  isGone,
  isInvalid,
  isNotFound,
  isTransient,
  KubeApiError,
  KubeConfigError,
} from "../../../src/kube/errors.js";
import { parseRemoteKubeConfig } from "../../../src/kube/kubeconfig.js";
import { microTime } from "../../../src/kube/leader-election.js";
import { apiErrorFrom } from "../../../src/kube/transport.js";

const status = (code: number, reason: string, message: string, details?: object): Buffer =>
  Buffer.from(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message, details }));

describe("KubeApiError", () => {
  it("is built from a metav1.Status and classified by the helpers", () => {
    const err = apiErrorFrom(404, status(404, "NotFound", 'configmaps "x" not found'), { operation: "get configmaps ns/x" });
    assert.ok(err instanceof StageSetError);
    assert.equal(err.status, 404);
    assert.equal(err.statusReason, "NotFound");
    assert.equal(err.message, 'get configmaps ns/x: configmaps "x" not found (HTTP 404 NotFound)');
    assert.ok(isNotFound(err));
    assert.ok(!isConflict(err) && !isForbidden(err) && !isGone(err) && !isInvalid(err));
  });

  it("tells Conflict from AlreadyExists (both 409)", () => {
    const conflict = apiErrorFrom(409, status(409, "Conflict", "the object has been modified"), { operation: "op" });
    const exists = apiErrorFrom(409, status(409, "AlreadyExists", "already exists"), { operation: "op" });
    assert.ok(isConflict(conflict) && !isAlreadyExists(conflict));
    assert.ok(isAlreadyExists(exists) && !isConflict(exists));
  });

  it("maps Forbidden to RBACDenied and Invalid to a terminal error with causes", () => {
    const forbidden = apiErrorFrom(403, status(403, "Forbidden", "cannot create"), { operation: "op" });
    assert.equal(forbidden.reason, Reasons.RBACDenied);
    const invalid = apiErrorFrom(
      422,
      status(422, "Invalid", "spec.replicas: Invalid value", { causes: [{ field: "spec.replicas", reason: "FieldValueInvalid" }] }),
      { operation: "op" },
    );
    assert.ok(isInvalid(invalid));
    assert.equal(invalid.terminal, true);
    assert.equal(invalid.causes[0]?.field, "spec.replicas");
    assert.equal(forbidden.terminal, false);
  });

  it("copes with a body that is not a Status", () => {
    const err = apiErrorFrom(503, Buffer.from("upstream connect error"), { operation: "list pods" });
    assert.equal(err.statusReason, "ServiceUnavailable");
    assert.match(err.message, /upstream connect error/);
    assert.ok(isTransient(err));
  });

  it("treats 410 and Expired as Gone", () => {
    assert.ok(isGone(apiErrorFrom(410, status(410, "Expired", "too old resource version"), { operation: "watch" })));
    assert.ok(isGone(new KubeApiError({ status: 410, reason: "Gone", serverMessage: "x", operation: "watch" })));
    assert.ok(!isGone(new Error("410")));
  });
});

describe("apiVersion helpers", () => {
  it("splits core and grouped versions and builds their paths", () => {
    assert.deepEqual(parseApiVersion("v1"), { group: "", version: "v1" });
    assert.deepEqual(parseApiVersion("stages.metio.wtf/v1"), { group: "stages.metio.wtf", version: "v1" });
    assert.equal(groupVersionPath("", "v1"), "/api/v1");
    assert.equal(groupVersionPath("apps", "v1"), "/apis/apps/v1");
  });
});

describe("microTime", () => {
  it("writes six fractional digits", () => {
    assert.equal(microTime(new Date("2024-05-01T10:20:30.123Z")), "2024-05-01T10:20:30.123000Z");
  });
});

describe("serviceAccountIdentity", () => {
  it("names the ServiceAccount and its groups", () => {
    assert.deepEqual(serviceAccountIdentity("payments", "deployer"), {
      user: "system:serviceaccount:payments:deployer",
      groups: ["system:serviceaccounts", "system:serviceaccounts:payments", "system:authenticated"],
    });
  });
});

const kubeconfig = (user: string, cluster = "    server: https://remote.example:6443\n    certificate-authority-data: Zm9v\n"): string =>
  `apiVersion: v1
kind: Config
current-context: remote
clusters:
- name: remote
  cluster:
${cluster}contexts:
- name: remote
  context: {cluster: remote, user: remote}
users:
- name: remote
  user:
${user}`;

describe("parseRemoteKubeConfig", () => {
  const origin = 'Secret payments/remote key "value"';

  it("accepts embedded credentials and builds a client for that server", () => {
    const kc = parseRemoteKubeConfig(kubeconfig("    token: abc\n"), { origin });
    assert.equal(kc.getCurrentCluster()?.server, "https://remote.example:6443");
    const client = KubeClient.fromKubeConfigString(kubeconfig("    token: abc\n"), { origin });
    assert.equal(client.server, "https://remote.example:6443/");
    assert.equal(client.writeCount(), 0);
  });

  it("refuses file references, naming the Secret and the fix", () => {
    assert.throws(
      () => parseRemoteKubeConfig(kubeconfig("    client-key: /var/run/secrets/kubernetes.io/serviceaccount/token\n    client-certificate-data: Zm9v\n"), { origin }),
      (err: unknown) =>
        err instanceof KubeConfigError &&
        err.message.includes(origin) &&
        err.message.includes("client-key") &&
        err.message.includes("client-key-data"),
    );
    assert.throws(
      () => parseRemoteKubeConfig(kubeconfig("    token: abc\n", "    server: https://x\n    certificate-authority: /etc/ca.crt\n"), { origin }),
      /certificate-authority/,
    );
  });

  it("refuses exec plugins unless allowed", () => {
    const exec = kubeconfig("    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [-c, id]\n");
    assert.throws(() => parseRemoteKubeConfig(exec, { origin }), /exec or auth-provider/);
    assert.doesNotThrow(() => parseRemoteKubeConfig(exec, { origin, allowExec: true }));
  });

  it("reports YAML that is no kubeconfig", () => {
    assert.throws(() => parseRemoteKubeConfig("just: text\n", { origin }), (err: unknown) => err instanceof KubeConfigError && err.message.startsWith(origin));
  });
});

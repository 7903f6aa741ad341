import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { KubeConfig as ClientNodeKubeConfig } from "@kubernetes/client-node";
import { authHeaderSource } from "../../../src/kube/credentials.js";
import { KubeConfig } from "../../../src/kube/kubeconfig-file.js";

const dir = mkdtempSync(join(tmpdir(), "kubeconfig-file-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const FULL = `apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443/
    certificate-authority: certs/ca.pem
    tls-server-name: api.prod
    proxy-url: http://proxy:3128
- name: dev
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: Q0EK
    insecure-skip-tls-verify: true
users:
- name: alice
  user:
    client-certificate: alice.crt
    client-key: /abs/alice.key
    as: bob
- name: tok
  user:
    token: s3cr3t
- name: basic
  user:
    username: u
    password: p
- name: plugin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: get-token
      args: ["--x"]
contexts:
- name: dev
  context:
    cluster: dev
    user: tok
    namespace: team-a
- name: prod
  context:
    cluster: prod
    user: alice
`;

describe("KubeConfig (our kubeconfig reader)", () => {
  it("reads what client-node's KubeConfig reads from the same file: clusters, users, contexts, paths made absolute", () => {
    const path = file("full.yaml", FULL);
    const ours = new KubeConfig();
    ours.loadFromFile(path);
    const theirs = new ClientNodeKubeConfig();
    theirs.loadFromFile(path);
    assert.equal(ours.getCurrentContext(), theirs.getCurrentContext());
    for (const name of ["dev", "prod"]) {
      const a = ours.getCluster(name)!;
      const b = theirs.getCluster(name)!;
      for (const key of ["server", "caData", "caFile", "skipTLSVerify", "tlsServerName", "proxyUrl"] as const) {
        assert.equal(a[key] ?? undefined, b[key] ?? undefined, `cluster ${name} ${key}`);
      }
    }
    for (const name of ["alice", "tok", "basic", "plugin"]) {
      const a = ours.getUser(name)!;
      const b = theirs.getUser(name)!;
      for (const key of ["token", "certData", "certFile", "keyData", "keyFile", "username", "password", "impersonateUser"] as const) {
        assert.equal(a[key] ?? undefined, b[key] ?? undefined, `user ${name} ${key}`);
      }
      assert.deepEqual(a.exec ?? undefined, b.exec ?? undefined, `user ${name} exec`);
    }
    assert.deepEqual(ours.getContextObject("dev"), { name: "dev", cluster: "dev", user: "tok", namespace: "team-a" });
    assert.equal(ours.getCurrentCluster()?.server, "https://127.0.0.1:6443");
    assert.equal(ours.getCurrentUser()?.token, "s3cr3t");
    assert.equal(ours.getCluster("prod")?.caFile, join(dir, "certs/ca.pem"));
  });

  it("names the entry that is wrong", () => {
    const kc = new KubeConfig();
    assert.throws(() => kc.loadFromString("clusters:\n- name: a\n  cluster: {}\n"), /clusters\[0\]\.cluster\.server is missing/);
    assert.throws(() => kc.loadFromString("users:\n- user: {token: x}\n"), /users\[0\]\.name is missing/);
    assert.throws(() => kc.loadFromString("- just\n- a list\n"), /not a YAML mapping/);
    assert.throws(() => kc.setCurrentContext("nope"), /no context named "nope"/);
  });

  it("merges KUBECONFIG as kubectl does: the first file to define a name or the current context wins", () => {
    const first = file("first.yaml", "clusters:\n- name: c\n  cluster: {server: https://first}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n");
    const second = file(
      "second.yaml",
      "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://second}\n- name: d\n  cluster: {server: https://d}\nusers:\n- name: u\n  user: {token: t}\n",
    );
    const kc = new KubeConfig();
    kc.loadFromDefault({ KUBECONFIG: `${first}:${second}` });
    assert.equal(kc.getCurrentContext(), "x");
    assert.equal(kc.getCurrentCluster()?.server, "https://first");
    assert.equal(kc.getCluster("d")?.server, "https://d");
    assert.equal(kc.getCurrentUser()?.token, "t");
  });

  it("falls back to ~/.kube/config, then the in-cluster ServiceAccount, then localhost:8080", () => {
    const home = mkdtempSync(join(dir, "home-"));
    const sa = mkdtempSync(join(dir, "sa-"));
    const kc = new KubeConfig();
    kc.loadFromDefault({ HOME: home }, sa);
    assert.equal(kc.getCurrentCluster()?.server, "http://localhost:8080");

    writeFileSync(join(sa, "token"), "sa-token\n");
    writeFileSync(join(sa, "namespace"), "flux-system");
    kc.loadFromDefault({ HOME: home, KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, sa);
    assert.equal(kc.getCurrentCluster()?.server, "https://[fd00::1]:443");
    assert.equal(kc.getCurrentCluster()?.caFile, join(sa, "ca.crt"));
    assert.deepEqual(kc.getCurrentUser()?.authProvider, { name: "tokenFile", config: { tokenFile: join(sa, "token") } });
    assert.equal(kc.getContextObject(kc.getCurrentContext())?.namespace, "flux-system");

    mkdirSync(join(home, ".kube"));
    writeFileSync(join(home, ".kube", "config"), FULL);
    const inPod = { HOME: home, KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" };
    kc.loadFromDefault(inPod, sa);
    assert.equal(kc.getCurrentContext(), "dev", "kubectl's order: ~/.kube/config before the ServiceAccount");
    kc.loadFromDefault(inPod, sa, "controller");
    assert.equal(kc.getCurrentContext(), "inClusterContext", "controller-runtime's order: the ServiceAccount before ~/.kube/config");
    kc.loadFromDefault({ HOME: home }, sa, "controller");
    assert.equal(kc.getCurrentContext(), "dev", "outside a Pod (no KUBERNETES_SERVICE_HOST) the token file alone is not in-cluster");
  });
});

describe("authHeaderSource", () => {
  const cluster = { name: "c", server: "https://x", skipTLSVerify: false };

  it("sends a static token or basic credentials, and nothing without a user", async () => {
    assert.deepEqual(await authHeaderSource(cluster, { name: "u", token: "abc" })(), { authorization: "Bearer abc" });
    assert.deepEqual(await authHeaderSource(cluster, { name: "u", username: "me", password: "pw" })(), {
      authorization: `Basic ${Buffer.from("me:pw").toString("base64")}`,
    });
    assert.deepEqual(await authHeaderSource(cluster, null)(), {});
  });

  it("re-reads a token file once a minute, as the kubelet rotates it", async () => {
    const tokenFile = file("rotating-token", "one\n");
    let now = 0;
    const source = authHeaderSource(cluster, { name: "u", authProvider: { name: "tokenFile", config: { tokenFile } } }, () => now);
    assert.deepEqual(await source(), { authorization: "Bearer one" });
    writeFileSync(tokenFile, "two\n");
    now = 59_999;
    assert.deepEqual(await source(), { authorization: "Bearer one" });
    now = 60_000;
    assert.deepEqual(await source(), { authorization: "Bearer two" });
  });

  it("runs an exec credential plugin through client-node", async () => {
    const plugin = file(
      "plugin.sh",
      `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-plugin"}}'\n`,
    );
    chmodSync(plugin, 0o755);
    const source = authHeaderSource(cluster, { name: "u", exec: { apiVersion: "client.authentication.k8s.io/v1", command: plugin, args: [], interactiveMode: "Never" } });
    assert.deepEqual(await source(), { authorization: "Bearer from-plugin" });
  });

  it("reads a kubeconfig's tokenFile as a rotating token file", () => {
    const kc = new KubeConfig();
    kc.loadFromString("users:\n- name: u\n  user: {tokenFile: /var/run/token}\n");
    assert.deepEqual(kc.getUser("u")?.authProvider, { name: "tokenFile", config: { tokenFile: "/var/run/token" } });
  });
});

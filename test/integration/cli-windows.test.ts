// `stagesetctl windows NAME` as a subprocess against a real control plane: the
// StageSet and its status.pendingUpdate come from the cluster (no controller runs).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { StageSet } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { runCli } from "../support/cli.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";

const STAGESET = { apiVersion: "stages.metio.wtf/v1", kind: "StageSet" } as const;
const AT = ["--now", "2026-12-01T10:00:00+01:00", "--time-zone", "Europe/Berlin", "--next", "1"];

describe("stagesetctl windows against a cluster", { concurrency: true }, () => {
  let cluster: TestCluster;
  let client: KubeClient;

  before(async () => {
    cluster = await testCluster();
    client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  });

  after(() => {
    client.close();
  });

  const create = (namespace: string, name: string, updateWindows: unknown[]) =>
    client.create<StageSet>({ ...STAGESET, metadata: { name, namespace }, spec: { stages: [{ name: "app", sourceRef: { name: "app" } }], updateWindows } } as never);

  test("shows the gate, the held revisions of status.pendingUpdate and the calendar", async () => {
    const namespace = await createTestNamespace(cluster, "cli-windows");
    const created = await create(namespace, "web", [{ type: "Deny", schedule: "0 9 * * MON-FRI", duration: "8h", timeZone: "Europe/Berlin" }]);
    await client.updateStatus({ ...created, status: { pendingUpdate: { revisions: { [`${namespace}/app`]: "v2@sha256:abc" }, nextWindowOpens: "2026-12-01T16:00:00Z" } } } as never);

    const result = await runCli(["windows", "web", "-n", namespace, ...AT], { kubeconfig: cluster.kubeconfigPath });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^StageSet: +${namespace}/web$`, "m"));
    assert.match(result.stdout, /^Scope: +Updates \(/m, "the API server's default windowScope");
    assert.match(result.stdout, /^Updates: +held by Deny window spec\.updateWindows\[0\] \("0 9 \* \* MON-FRI" for 8h, Europe\/Berlin\) until 2026-12-01T17:00:00\+01:00; next allowed Tue 2026-12-01 17:00 \+01:00$/m);
    assert.match(
      result.stdout,
      new RegExp(`^Pending: +${namespace}/app at v2@sha256:abc held \\(status\\.pendingUpdate\\); the controller expects the next window at 2026-12-01T16:00:00Z$`, "m"),
    );
    assert.match(result.stdout, /^ {2}1 {3}Europe\/Berlin \(yours\) {3}Tue 2026-12-01 17:00 \+01:00 {3}Wed 2026-12-02 09:00 \+01:00 {3}16h$/m);
  });

  test("a schedule the API server admits but the controller refuses exits 2 naming the field; a missing StageSet exits 3", async () => {
    const namespace = await createTestNamespace(cluster, "cli-windows-bad");
    await create(namespace, "web", [{ type: "Deny", schedule: "0 0 9 * * MON-FRI", duration: "8h" }]);

    const bad = await runCli(["windows", "web", "-n", namespace, ...AT], { kubeconfig: cluster.kubeconfigPath });
    assert.equal(bad.code, 2, bad.stderr);
    assert.equal(bad.stdout, "");
    assert.match(bad.stderr, new RegExp(`^error: StageSet ${namespace}/web has invalid update windows`));
    assert.match(bad.stderr, /^ {2}spec\.updateWindows\[0\]\.schedule: "0 0 9 \* \* MON-FRI" has 6 fields/m);

    const missing = await runCli(["windows", "nope", "-n", namespace, ...AT], { kubeconfig: cluster.kubeconfigPath });
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, new RegExp(`StageSet ${namespace}/nope not found`));
  });
});

// stagesetctl as a subprocess against a real control plane, with the
// controller running in this process: diff before and after the controller
// applies a change, get during and after a rollout, reconcile --wait.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import type { StageSet } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { ArtifactServer } from "../support/artifact-server.js";
import { runCli, type CliResult } from "../support/cli.js";
import { createTestNamespace, testCluster, type TestCluster } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact, SOURCE_API_VERSION } from "../support/flux.js";
import { waitFor } from "../support/wait.js";

const STAGESET = { apiVersion: "stages.metio.wtf/v1", kind: "StageSet" } as const;

describe("stagesetctl against a cluster", { concurrency: true }, () => {
  let cluster: TestCluster;
  let server: ArtifactServer;
  let client: KubeClient;

  const cli = (args: string[]): Promise<CliResult> => runCli(args, { kubeconfig: cluster.kubeconfigPath });

  const getStageSet = (namespace: string, name: string) => client.get<StageSet>({ ...STAGESET, namespace, name });
  const ready = (s: StageSet | undefined) => s?.status?.conditions?.find((c) => c.type === "Ready");
  const waitReady = (namespace: string, name: string) =>
    waitFor(
      async () => {
        const s = await getStageSet(namespace, name);
        return ready(s)?.status === "True" && s?.status?.observedGeneration === s?.metadata.generation ? s : undefined;
      },
      { description: `StageSet ${namespace}/${name} Ready`, timeoutMs: 90_000, intervalMs: 200 },
    );

  before(async () => {
    cluster = await testCluster();
    server = new ArtifactServer();
    await server.start();
    client = KubeClient.fromKubeConfig(cluster.kubeConfig);
  });

  after(async () => {
    await server.stop();
    client.close();
  });

  test("diff exits 1 with masked secrets and pruned objects, reconcile --wait returns once handled, then diff exits 0", async () => {
    const namespace = await createTestNamespace(cluster, "cli-diff");
    const files = (mode: string, token: string, extra: boolean) => ({
      "settings.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: ${mode}\n`,
      "creds.yaml": `apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  token: ${token}\n`,
      ...(extra ? { "extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  keep: me\n" } : {}),
    });
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, files("blue", "s3cret-one", true), "v1"));
    await client.create({ ...STAGESET, metadata: { name: "web", namespace }, spec: { stages: [{ name: "app", sourceRef: { name: "app" } }] } });

    let controller = await startTestController(cluster, namespace);
    try {
      await waitReady(namespace, "web");
    } finally {
      await controller.stop();
    }

    // With the controller stopped, a new revision waits to be applied.
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, files("green", "s3cret-two", false), "v2"));
    const secretValues = ["s3cret-one", "s3cret-two"].flatMap((v) => [v, Buffer.from(v).toString("base64")]);

    const diff = await cli(["diff", "web", "-n", namespace, "--color=never"]);
    assert.equal(diff.code, 1, diff.stderr);
    assert.match(diff.stdout, /^--- live\n\+\+\+ merged\n/);
    assert.match(diff.stdout, new RegExp(`@@ ConfigMap ${namespace}/settings @@\n(.*\n)*-  mode: blue\n\\+  mode: green\n`));
    assert.match(diff.stdout, new RegExp(`@@ Secret ${namespace}/creds @@\n(.*\n)*-  token: "\\*\\*\\*"\n\\+  token: "\\*\\*\\*"\n`));
    assert.match(diff.stdout, new RegExp(`^- ConfigMap ${namespace}/extra \\(pruned: fell out of inventory\\)$`, "m"));
    for (const value of secretValues) assert.ok(!diff.stdout.includes(value), "no secret value in the diff");

    const revealed = await cli(["diff", "web", "-n", namespace, "--show-secrets", "--prune=false"]);
    assert.equal(revealed.code, 1);
    assert.ok(revealed.stdout.includes(`+  token: ${Buffer.from("s3cret-two").toString("base64")}`));
    assert.doesNotMatch(revealed.stdout, /pruned/);

    const clientSide = await cli(["diff", "web", "-n", namespace, "--server-side=false", "--color=always"]);
    assert.equal(clientSide.code, 1, clientSide.stderr);
    assert.ok(clientSide.stdout.includes("\x1b[32m+  mode: green\x1b[0m"));
    assert.match(clientSide.stdout, /ConfigMap .*\/extra \(pruned: fell out of inventory\)/);

    const noGate = await cli(["diff", "web", "-n", namespace, "--exit-code=false"]);
    assert.equal(noGate.code, 0);
    assert.match(noGate.stdout, /mode: green/);

    const build = await cli(["build", "web", "-n", namespace]);
    assert.equal(build.code, 0, build.stderr);
    assert.match(build.stdout, /mode: green/);
    assert.match(build.stdout, /token: "\*\*\*"/);
    for (const value of secretValues) assert.ok(!build.stdout.includes(value));

    controller = await startTestController(cluster, namespace);
    try {
      const reconcile = await cli(["reconcile", "web", "-n", namespace, "--wait", "--timeout", "90s"]);
      assert.equal(reconcile.code, 0, reconcile.stderr);
      assert.match(reconcile.stdout, /reconcile requested for StageSet .*\/web/);
      assert.match(reconcile.stdout, /stage "app": Ready/);
      assert.match(reconcile.stdout, new RegExp(`is Ready: applied 1 stage\\(s\\): ${namespace}/app at v2`));
      const handled = await getStageSet(namespace, "web");
      assert.equal(handled?.status?.lastHandledReconcileAt, handled?.metadata.annotations?.["reconcile.fluxcd.io/requestedAt"]);

      const clean = await cli(["diff", "web", "-n", namespace]);
      assert.equal(clean.code, 0, clean.stdout + clean.stderr);
      assert.equal(clean.stdout, "");
      const cleanClientSide = await cli(["diff", "web", "-n", namespace, "--server-side=false"]);
      assert.equal(cleanClientSide.code, 0, cleanClientSide.stdout + cleanClientSide.stderr);
    } finally {
      await controller.stop();
    }
  });

  test("get shows a rollout in progress, then the finished StageSet", async () => {
    const namespace = await createTestNamespace(cluster, "cli-get");
    const configMap = (name: string) => ({ [`${name}.yaml`]: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n` });
    await publishExternalArtifact(client, namespace, "infra", server.add(`${namespace}-infra`, configMap("base"), "infra-v1"));
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, configMap("web"), "app-v1"));
    await client.create({
      ...STAGESET,
      metadata: { name: "shop", namespace },
      spec: {
        stages: [
          { name: "infra", sourceRef: { name: "infra" } },
          // Verifies until the test creates the ConfigMap it checks.
          { name: "app", sourceRef: { name: "app" }, readyChecks: { checks: [{ apiVersion: "v1", kind: "ConfigMap", name: "go-signal" }] } },
        ],
      },
    });
    const controller = await startTestController(cluster, namespace);
    try {
      await waitFor(async () => (await getStageSet(namespace, "shop"))?.status?.stages?.[1]?.phase === "Verifying", {
        description: "stage app Verifying",
        timeoutMs: 60_000,
        intervalMs: 200,
      });
      const during = await cli(["get", "shop", "-n", namespace]);
      assert.equal(during.code, 0, during.stderr);
      assert.match(during.stdout, /Ready:\s+Unknown \(Progressing\)/);
      assert.match(during.stdout, /Message:\s+stage "app": verifying revision app-v1/);
      assert.match(during.stdout, /infra\s+Ready\s+infra-v1\s+1\s/);
      assert.match(during.stdout, /app\s+Verifying\s/);
      const list = await cli(["get", "-n", namespace]);
      assert.match(list.stdout, /^NAME\s+READY\s+REASON\s+STAGES\s+VERSION\s+PENDING\nshop\s+Unknown\s+Progressing\s+1\/2\s+-\s+-\n$/);

      await client.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "go-signal", namespace } });
      await waitReady(namespace, "shop");
      const done = await cli(["get", "-n", namespace]);
      assert.match(done.stdout, /\nshop\s+True\s+Succeeded\s+2\/2\s+-\s+-\n$/);
      const all = await cli(["get", "-A"]);
      assert.match(all.stdout, new RegExp(`^${namespace}\\s+shop\\s+True\\s+Succeeded\\s+2/2`, "m"));
      const detail = await cli(["get", "shop", "-n", namespace]);
      assert.match(detail.stdout, /Ready:\s+True \(Succeeded\)/);
      assert.match(detail.stdout, /app\s+Ready\s+app-v1\s+1\s/);
      const asYaml = parseYaml((await cli(["get", "shop", "-n", namespace, "-o", "yaml"])).stdout) as StageSet;
      assert.equal(asYaml.status?.stages?.[1]?.phase, "Ready");
      assert.equal(asYaml.metadata.managedFields, undefined);
      const asJson = JSON.parse((await cli(["get", "-n", namespace, "-o", "json"])).stdout) as { kind: string; items: StageSet[] };
      assert.equal(asJson.kind, "List");
      assert.deepEqual(asJson.items.map((s) => s.metadata.name), ["shop"]);

      const missing = await cli(["get", "nope", "-n", namespace]);
      assert.equal(missing.code, 3);
      assert.match(missing.stderr, /StageSet .*\/nope not found/);
    } finally {
      await controller.stop();
    }
  });

  test("reconcile stamps its annotations, fails --wait with the Ready message, and refuses a suspended StageSet without --force", async () => {
    const namespace = await createTestNamespace(cluster, "cli-reconcile");
    const gizmo = { "gizmo.yaml": "apiVersion: gizmos.example.invalid/v1\nkind: Gizmo\nmetadata:\n  name: g\n" };
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, gizmo, "v1"));
    await client.create({ ...STAGESET, metadata: { name: "broken", namespace }, spec: { stages: [{ name: "app", sourceRef: { name: "app" } }] } });
    const controller = await startTestController(cluster, namespace);
    try {
      const failed = await cli(["reconcile", "broken", "-n", namespace, "--wait", "--timeout", "60s"]);
      assert.equal(failed.code, 3, failed.stdout + failed.stderr);
      assert.match(failed.stderr, /is not Ready \(StageFailed\): .*Gizmo/);
      assert.match(failed.stdout, /stage "app": Failed/);

      const wrongStage = await cli(["reconcile", "broken", "-n", namespace, "--stage", "ap"]);
      assert.equal(wrongStage.code, 2);
      assert.match(wrongStage.stderr, /--stage ap: .* use one of: app/);

      const stamped = await cli(["reconcile", "broken", "-n", namespace, "--stage", "app", "--with-source", "--update-now", "--force"]);
      assert.equal(stamped.code, 0, stamped.stderr);
      const annotations = (await getStageSet(namespace, "broken"))?.metadata.annotations ?? {};
      const token = annotations["reconcile.fluxcd.io/requestedAt"];
      assert.ok(token && !Number.isNaN(Date.parse(token)));
      assert.equal(annotations["stages.metio.wtf/reconcile-stage"], `app@${token}`);
      assert.equal(annotations["stages.metio.wtf/update-now"], token);
      assert.equal(annotations["stages.metio.wtf/force-reconcile"], token);
      const source = await client.get({ apiVersion: SOURCE_API_VERSION, kind: "ExternalArtifact", namespace, name: "app" });
      assert.equal(source?.metadata.annotations?.["reconcile.fluxcd.io/requestedAt"], token);

      await client.patch({ ...STAGESET, namespace, name: "broken" }, { spec: { suspend: true } }, "merge");
      const suspended = await cli(["reconcile", "broken", "-n", namespace]);
      assert.equal(suspended.code, 3);
      assert.match(suspended.stderr, /is suspended .*pass --force/);
    } finally {
      await controller.stop();
    }
  });

  test("--as-tenant renders and dry-runs as the StageSet's ServiceAccount", async () => {
    const namespace = await createTestNamespace(cluster, "cli-tenant");
    await client.create({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "deployer", namespace } });
    const cm = { "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tenant-cm\ndata:\n  a: b\n" };
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, cm, "v1"));
    await client.create({
      ...STAGESET,
      metadata: { name: "tenant", namespace },
      spec: { serviceAccountName: "deployer", stages: [{ name: "app", sourceRef: { name: "app" } }] },
    });

    const asUser = await cli(["diff", "tenant", "-n", namespace, "--color=never"]);
    assert.equal(asUser.code, 1, asUser.stderr);
    assert.match(asUser.stdout, /@@ ConfigMap .*\/tenant-cm \(created\) @@/);

    const asTenant = await cli(["diff", "tenant", "-n", namespace, "--as-tenant", "--color=never"]);
    assert.equal(asTenant.code, 3, asTenant.stdout + asTenant.stderr);
    assert.match(asTenant.stderr, new RegExp(`system:serviceaccount:${namespace}:deployer`), "the refusal names the tenant identity");
    assert.equal(await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "tenant-cm" }), undefined, "a diff never writes");
  });
});

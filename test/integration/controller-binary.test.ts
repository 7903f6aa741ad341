// The stageset-controller binary as an operator runs it: flags, KUBECONFIG or
// --kubeconfig, probes, a reconcile, and a graceful exit on SIGTERM.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { KubeClient } from "../../src/kube/client.js";
import { repoRoot } from "../../src/util/tools.js";
import { createTestNamespace, testCluster } from "../support/cluster.js";
import { STAGESET, waitForReason } from "../support/pipeline.js";
import { waitFor } from "../support/wait.js";

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

/** The compiled binary when it exists (npm test), else the TypeScript entry through tsx. */
function controllerCommand(): string[] {
  const compiled = `${repoRoot()}/dist/src/main.js`;
  return existsSync(compiled) ? [compiled] : ["--import", "tsx", `${repoRoot()}/src/main.ts`];
}

async function probe(port: number, path: string): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
  } catch {
    return 0;
  }
}

for (const via of ["KUBECONFIG", "--kubeconfig"] as const) {
  test(`the binary connects via ${via}, serves probes, reconciles, and exits 0 on SIGTERM`, async () => {
    const cluster = await testCluster();
    const namespace = await createTestNamespace(cluster, `bin-${via === "KUBECONFIG" ? "env" : "flag"}`);
    const client = KubeClient.fromKubeConfig(cluster.kubeConfig);
    const port = await freePort();
    const metricsPort = await freePort();
    const args = [
      ...controllerCommand(),
      "--watch-namespaces",
      namespace,
      "--health-probe-bind-address",
      `127.0.0.1:${port}`,
      "--metrics-bind-address",
      `127.0.0.1:${metricsPort}`,
      "--gate-bind-address",
      "127.0.0.1:0",
      "--enable-webhook=false",
      "--log-encoding",
      "json",
      ...(via === "--kubeconfig" ? ["--kubeconfig", cluster.kubeconfigPath] : []),
    ];
    const env = { ...process.env, KUBECONFIG: via === "KUBECONFIG" ? cluster.kubeconfigPath : "/nonexistent/kubeconfig" };
    const child: ChildProcess = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      await waitFor(async () => (await probe(port, "/readyz")) === 200, { description: "/readyz 200", timeoutMs: 30_000, abortIf: () => (child.exitCode !== null ? `exited: ${stderr}` : undefined) });
      assert.equal(await probe(port, "/healthz"), 200);
      await client.create({ ...STAGESET, metadata: { name: "bin", namespace }, spec: { stages: [{ name: "app", sourceRef: { name: "missing" } }] } });
      await waitForReason(client, namespace, "bin", "SourceNotReady", 30_000);
      // The counter moves right after the status write the wait above saw; poll for it.
      const counted = new RegExp(`stageset_reconcile_total\\{namespace="${namespace}",name="bin",reason="SourceNotReady"\\} [1-9]`);
      const metrics = await waitFor(
        async () => {
          const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
          return counted.test(text) ? text : undefined;
        },
        { description: "stageset_reconcile_total for the StageSet", timeoutMs: 10_000 },
      );
      assert.match(metrics, /controller_runtime_reconcile_total\{controller="stageset",result="[a-z_]+"\} [1-9]/);
      assert.match(metrics, /workqueue_adds_total\{name="stageset",controller="stageset"\} [1-9]/);
      assert.match(metrics, /workqueue_depth\{name="stageset",controller="stageset",priority=""\} 0/);
      assert.match(metrics, /workqueue_longest_running_processor_seconds\{name="stageset",controller="stageset"\} /);
      assert.match(metrics, /controller_runtime_max_concurrent_reconciles\{controller="stageset"\} 4/);
      assert.match(metrics, /leader_election_master_status\{name="stageset-controller.stages.metio.wtf"\} 1/, "without leader election the process reconciles");
      const lines = stderr.trim().split("\n").filter(Boolean);
      assert.ok(lines.length > 0 && lines.every((l) => l.startsWith("{")), "logs are JSON lines by default");

      child.kill("SIGTERM");
      const [code] = (await once(child, "exit")) as [number | null];
      assert.equal(code, 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      client.close();
    }
  });
}

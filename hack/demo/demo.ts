// `make demo`: a local control plane, artifacts served over HTTP as Flux
// ExternalArtifacts, the controller, and a three-stage StageSet rolled out
// while its progress is printed. `--keep` leaves everything running.
import { writeFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { StageSet } from "../../src/api/types.js";
import { parseControllerFlags } from "../../src/config/flags.js";
import { startController } from "../../src/controller/controller.js";
import { KubeClient } from "../../src/kube/client.js";
import { createLogger } from "../../src/util/log.js";
import { repoRoot } from "../../src/util/tools.js";
import { ArtifactServer } from "../../test/support/artifact-server.js";
import { startControlPlane } from "../../test/support/controlplane/controlplane.js";
import { publishExternalArtifact } from "../../test/support/flux.js";
import { demoAppUpgrade, demoArtifacts, demoStageSet, DEMO_NAMESPACE } from "./manifests.js";

const keep = process.argv.includes("--keep");
const say = (line: string) => process.stdout.write(`${line}\n`);
const step = (line: string) => say(`\n==> ${line}`);

async function main(): Promise<void> {
  const started = Date.now();
  step("Starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)");
  // Its own kubeconfig, so a demo never points `make cluster-up`'s kubeconfig at a cluster that is gone.
  const kubeconfigPath = join(repoRoot(), ".tools", "demo.kubeconfig");
  mkdirSync(join(repoRoot(), ".tools"), { recursive: true });
  const controlPlane = await startControlPlane({ kubeconfigPath, log: (l) => say(`    ${l}`) });
  const stopAll: (() => Promise<unknown>)[] = [() => controlPlane.stop()];
  process.once("SIGINT", () => void shutdown(stopAll, 130));
  process.once("SIGTERM", () => void shutdown(stopAll, 143));
  say(`    API server ${controlPlane.server}, admin kubeconfig ${kubeconfigPath}`);

  const client = KubeClient.fromKubeConfig(controlPlane.kubeConfig);
  stopAll.unshift(async () => client.close());
  await client.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: DEMO_NAMESPACE } });

  step("Serving three artifacts on loopback and publishing them as ExternalArtifacts");
  const server = new ArtifactServer();
  await server.start();
  stopAll.unshift(() => server.stop());
  for (const artifact of demoArtifacts()) {
    const published = server.add(artifact.name, artifact.files, artifact.revision);
    await publishExternalArtifact(client, DEMO_NAMESPACE, artifact.name, published);
    say(`    ExternalArtifact ${DEMO_NAMESPACE}/${artifact.name}: ${artifact.description} (${published.url})`);
  }

  step("Starting a deploy-notification endpoint on loopback (the app stage's post action calls it)");
  const hook = createServer((req, res) => {
    req.resume();
    say(`    [${new Date().toISOString().slice(11, 19)}] notification received: ${req.method} ${req.url} (X-StageSet: ${String(req.headers["x-stageset"])})`);
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  stopAll.unshift(() => new Promise<void>((resolve) => hook.close(() => resolve())));
  const hookPort = (hook.address() as AddressInfo).port;

  step("Starting the controller");
  const config = parseControllerFlags([
    "--health-probe-bind-address",
    "127.0.0.1:0",
    "--metrics-bind-address",
    "127.0.0.1:0",
    "--gate-bind-address",
    "127.0.0.1:0",
    "--enable-webhook=false",
    "--log-encoding",
    "console",
    "--allowed-action-hosts",
    `127.0.0.1:${hookPort}`,
  ]);
  const controller = await startController({
    config,
    kubeConfig: controlPlane.kubeConfig,
    log: createLogger({ level: process.env.DEMO_LOG_LEVEL ?? "warn", encoding: "console" }),
    healthPollIntervalMs: 500,
  });
  stopAll.unshift(() => controller.stop());
  say(`    metrics on http://127.0.0.1:${controller.metricsPort}/metrics, probes on http://127.0.0.1:${controller.probes.port}/readyz`);

  step(`Applying StageSet ${DEMO_NAMESPACE}/platform: crds -> config -> app (pre: wait 1s, post: notify)`);
  await client.create(demoStageSet(`http://127.0.0.1:${hookPort}/deployed`));
  const outcome = await followRollout(client);
  step(outcome === "ready" ? `Rolled out in ${((Date.now() - started) / 1000).toFixed(1)}s` : "The rollout did not finish; see the messages above");
  await printInventory(client);
  if (outcome === "ready") await showWindowAndGate(client, server, controller.gatePort!);

  if (!keep) {
    say("\nNext: run `make demo DEMO_ARGS=--keep` to keep everything running and explore:");
    say(`  KUBECONFIG=.tools/demo.kubeconfig node dist/src/cli/main.js get -A`);
    say(`  KUBECONFIG=.tools/demo.kubeconfig node dist/src/cli/main.js get platform -n ${DEMO_NAMESPACE}`);
    say(`  KUBECONFIG=.tools/demo.kubeconfig node dist/src/cli/main.js diff platform -n ${DEMO_NAMESPACE}`);
    say("Then read docs/architecture.md for how a reconcile flows.");
    await shutdown(stopAll, outcome === "ready" ? 0 : 1);
    return;
  }
  writeFileSync(join(repoRoot(), ".tools", "demo.env"), `KUBECONFIG=${kubeconfigPath}\n`);
  say("\nEverything keeps running (Ctrl-C stops it). In another shell try:");
  say(`  export KUBECONFIG=${kubeconfigPath}`);
  say(`  node dist/src/cli/main.js get -A                      # the StageSet list`);
  say(`  node dist/src/cli/main.js get platform -n ${DEMO_NAMESPACE}     # per-stage detail`);
  say(`  node dist/src/cli/main.js reconcile platform -n ${DEMO_NAMESPACE} --wait`);
  say("The controller corrects drift: edit a managed object and watch it come back.");
  await new Promise(() => {});
}

/**
 * The gate and an update window: the gate says the app stage is Ready; a
 * Deny window is added; a new app revision is held (the gate still answers
 * for the pinned revision); `update-now` ships it.
 */
async function showWindowAndGate(client: KubeClient, server: ArtifactServer, gatePort: number): Promise<void> {
  const ref = { apiVersion: "stages.metio.wtf/v1", kind: "StageSet", namespace: DEMO_NAMESPACE, name: "platform" };
  const gate = async () => {
    const url = `http://127.0.0.1:${gatePort}/gate/${DEMO_NAMESPACE}/platform/app`;
    const plain = await fetch(url);
    const json = (await (await fetch(url, { headers: { accept: "application/json" } })).json()) as { revision: string; message: string };
    say(`    GET /gate/${DEMO_NAMESPACE}/platform/app -> ${plain.status} (${json.revision}: ${json.message})`);
  };
  step("Asking the gate endpoint, as Flagger or Argo Rollouts would");
  await gate();

  const from = new Date(Date.now() - 60_000).toISOString();
  const to = new Date(Date.now() + 3_600_000).toISOString();
  step(`Adding an update window: Deny from ${from} to ${to} (a change freeze)`);
  await client.patch(ref, { spec: { updateWindows: [{ type: "Deny", from, to }] } }, "merge");
  await waitUntil(client, (s) => s.status?.observedGeneration === s.metadata.generation);

  const upgrade = demoAppUpgrade();
  step(`Publishing ${upgrade.revision} (${upgrade.description}) during the freeze`);
  await publishExternalArtifact(client, DEMO_NAMESPACE, upgrade.name, server.add(upgrade.name, upgrade.files, upgrade.revision));
  const held = await waitUntil(client, (s) => s.status?.conditions?.find((c) => c.type === "Ready")?.reason === "UpdateDeferred");
  say(`    Ready=False UpdateDeferred: ${held.status?.conditions?.find((c) => c.type === "Ready")?.message ?? ""}`);
  say(`    status.pendingUpdate: ${JSON.stringify(held.status?.pendingUpdate)}`);
  await gate();

  step("Shipping it anyway: the stages.metio.wtf/update-now annotation (stagesetctl reconcile platform --update-now)");
  const token = new Date().toISOString();
  await client.patch(ref, { metadata: { annotations: { "stages.metio.wtf/update-now": token, "reconcile.fluxcd.io/requestedAt": token } } }, "merge");
  const shipped = await waitUntil(client, (s) => s.status?.lastAppliedRevisions?.[`${DEMO_NAMESPACE}/app`] === upgrade.revision && s.status?.conditions?.find((c) => c.type === "Ready")?.status === "True");
  say(`    ${upgrade.revision} rolled out; status.lastHandledUpdateOverride=${shipped.status?.lastHandledUpdateOverride ?? "-"}`);
  await gate();
}

/** Polls the demo StageSet until `done` holds (at most two minutes). */
async function waitUntil(client: KubeClient, done: (s: StageSet) => boolean): Promise<StageSet> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const s = await client.get<StageSet>({ apiVersion: "stages.metio.wtf/v1", kind: "StageSet", namespace: DEMO_NAMESPACE, name: "platform" });
    if (s && done(s)) return s;
    if (Date.now() > deadline) throw new Error("the demo StageSet did not reach the expected state within two minutes");
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Prints every change of the StageSet's stage phases and Ready condition (from a watch) until it settles. */
async function followRollout(client: KubeClient): Promise<"ready" | "failed"> {
  let last = "";
  const abort = AbortSignal.timeout(5 * 60_000);
  for (;;) {
    try {
      for await (const event of client.watch<StageSet>("stages.metio.wtf/v1", "StageSet", {
        namespace: DEMO_NAMESPACE,
        fieldSelector: "metadata.name=platform",
        signal: abort,
      })) {
        const s = event.object;
        const ready = s.status?.conditions?.find((c) => c.type === "Ready");
        const stages = (s.status?.stages ?? []).map((st) => `${st.name}=${st.phase}`).join("  ");
        const line = `${stages || "(not reconciled yet)"}  | Ready=${ready?.status ?? "-"} ${ready?.reason ?? ""}`;
        if (line !== last) say(`    [${new Date().toISOString().slice(11, 19)}] ${line}`);
        last = line;
        if (ready?.status === "True" && s.status?.observedGeneration === s.metadata.generation) return "ready";
        if (ready?.status === "False" && s.status?.conditions?.some((c) => c.type === "Stalled")) {
          say(`    ${ready.message}`);
          return "failed";
        }
      }
    } catch (err) {
      if (abort.aborted) return "failed";
      throw err;
    }
    if (abort.aborted) return "failed";
  }
}

async function printInventory(client: KubeClient): Promise<void> {
  const s = await client.get<StageSet>({ apiVersion: "stages.metio.wtf/v1", kind: "StageSet", namespace: DEMO_NAMESPACE, name: "platform" });
  for (const stage of s?.status?.stages ?? []) {
    const actions = stage.executedActions?.length ? `, actions done: ${stage.executedActions.join(", ")}` : "";
    say(`    stage ${stage.name.padEnd(7)} ${stage.phase.padEnd(6)} ${String(stage.entriesCount ?? 0).padStart(2)} object(s) at ${stage.appliedRevision ?? "-"}${actions}`);
  }
  const deployment = await client.get({ apiVersion: "apps/v1", kind: "Deployment", namespace: DEMO_NAMESPACE, name: "web" });
  const available = (deployment?.status as { availableReplicas?: number } | undefined)?.availableReplicas ?? 0;
  say(`    Deployment ${DEMO_NAMESPACE}/web: ${available} replica(s) available (pods run on a kwok fake node)`);
}

async function shutdown(stops: (() => Promise<unknown>)[], code: number): Promise<void> {
  for (const stop of stops) await stop().catch(() => undefined);
  process.exit(code);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

// The B4 floors in a process of their own, to measure what a fresh process
// pays before V8 has compiled its request path: B1 starts our controller
// afresh each round, while the in-process floor runs in the benchmark's
// long-warm process.
//
// Run as `node dist/bench/lib/floor-process.js KUBECONFIG OBJECTS ROUNDS [bare|design]`;
// prints one JSON line per round: {"round": n, "seconds": s, "cpuSeconds": c}
// (wall time of the measured work alone, and this process's CPU over it,
// which for `design` also covers writing the artifact to a temporary
// directory first; with `design`, also buildSeconds and inventorySeconds).
// Each round works in a namespace of its own, which it deletes and waits out
// before the next round starts.
// - bare (the default): OBJECTS ConfigMaps applied, 10 at a time;
// - design: the design's floor (designFloor in ./floor.ts): the kustomize
//   build, the StageInventory and the labelled applies, 10 at a time.
import { performance } from "node:perf_hooks";
import { KubeClient } from "../../src/kube/client.js";
import { loadKubeConfig } from "../../src/kube/kubeconfig.js";
import { pollUntil } from "../../src/util/poll.js";
import { systemClock } from "../../src/util/clock.js";
import { applyAllBare, designFloor, floorObjects } from "./floor.js";

const [kubeconfig, objectsArg, roundsArg, mode = "bare"] = process.argv.slice(2);
if (!kubeconfig || !objectsArg || !roundsArg || (mode !== "bare" && mode !== "design")) {
  throw new Error("usage: floor-process.js KUBECONFIG OBJECTS ROUNDS [bare|design]");
}
const objects = Number(objectsArg);
const rounds = Number(roundsArg);
const client = KubeClient.fromKubeConfig(loadKubeConfig({ path: kubeconfig }));
const namespaceRef = (name: string) => ({ apiVersion: "v1", kind: "Namespace", name });

try {
  for (let round = 1; round <= rounds; round++) {
    const namespace = `bench-b4-${mode === "design" ? "design" : "fresh"}-${process.pid}-${round}`;
    await client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, labels: { "stageset-test": "bench" } } }, { fieldManager: "bench", force: true });
    // As in the benchmark: kube-controller-manager's kube-root-ca.crt lands before anything is measured.
    await pollUntil(systemClock, { timeoutMs: 30_000, intervalMs: 50, onTimeout: () => new Error(`no kube-root-ca.crt in ${namespace}`) }, async () =>
      (await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "kube-root-ca.crt" })) ? true : undefined,
    );
    const cpu = process.cpuUsage();
    let result: { seconds: number; buildSeconds?: number; inventorySeconds?: number };
    if (mode === "design") {
      result = await designFloor(client, namespace, objects, 10);
    } else {
      const desired = floorObjects(objects, namespace);
      const started = performance.now();
      await applyAllBare(client, desired, 10);
      result = { seconds: (performance.now() - started) / 1000 };
    }
    const used = process.cpuUsage(cpu);
    process.stdout.write(`${JSON.stringify({ round, ...result, cpuSeconds: (used.user + used.system) / 1e6 })}\n`);
    await client.delete(namespaceRef(namespace));
    await pollUntil(systemClock, { timeoutMs: 300_000, intervalMs: 200, onTimeout: () => new Error(`namespace ${namespace} not gone`) }, async () =>
      (await client.get(namespaceRef(namespace))) ? undefined : true,
    );
  }
} finally {
  client.close();
}

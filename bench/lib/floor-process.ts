// The B4 floor client in a process of its own, to measure what a fresh
// process pays before V8 has compiled its request path: B1 starts our
// controller afresh each round, while the in-process floor runs in the
// benchmark's long-warm process.
//
// Run as `node dist/bench/lib/floor-process.js KUBECONFIG OBJECTS ROUNDS`;
// prints one JSON line per round: {"round": n, "seconds": s, "cpuSeconds": c}
// (wall time of the applies alone, and this process's CPU over them). Each
// round applies OBJECTS ConfigMaps, 10 at a time, into a namespace of its own,
// which it deletes and waits out before the next round starts.
import { performance } from "node:perf_hooks";
import { KubeClient } from "../../src/kube/client.js";
import { loadKubeConfig } from "../../src/kube/kubeconfig.js";
import { pollUntil } from "../../src/util/poll.js";
import { systemClock } from "../../src/util/clock.js";
import { applyAllBare, floorObjects } from "./floor.js";

const [kubeconfig, objectsArg, roundsArg] = process.argv.slice(2);
if (!kubeconfig || !objectsArg || !roundsArg) throw new Error("usage: floor-process.js KUBECONFIG OBJECTS ROUNDS");
const objects = Number(objectsArg);
const rounds = Number(roundsArg);
const client = KubeClient.fromKubeConfig(loadKubeConfig({ path: kubeconfig }));
const namespaceRef = (name: string) => ({ apiVersion: "v1", kind: "Namespace", name });

try {
  for (let round = 1; round <= rounds; round++) {
    const namespace = `bench-b4-fresh-${process.pid}-${round}`;
    await client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, labels: { "stageset-test": "bench" } } }, { fieldManager: "bench", force: true });
    // As in the benchmark: kube-controller-manager's kube-root-ca.crt lands before anything is measured.
    await pollUntil(systemClock, { timeoutMs: 30_000, intervalMs: 50, onTimeout: () => new Error(`no kube-root-ca.crt in ${namespace}`) }, async () =>
      (await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "kube-root-ca.crt" })) ? true : undefined,
    );
    const desired = floorObjects(objects, namespace);
    const cpu = process.cpuUsage();
    const started = performance.now();
    await applyAllBare(client, desired, 10);
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    process.stdout.write(`${JSON.stringify({ round, seconds, cpuSeconds: (used.user + used.system) / 1e6 })}\n`);
    await client.delete(namespaceRef(namespace));
    await pollUntil(systemClock, { timeoutMs: 300_000, intervalMs: 200, onTimeout: () => new Error(`namespace ${namespace} not gone`) }, async () =>
      (await client.get(namespaceRef(namespace))) ? undefined : true,
    );
  }
} finally {
  client.close();
}

// The B4 floors and the B1 artifact they send, shared by the benchmark
// (bench/kustomize-controller.ts) and the floors run in a process of their
// own (bench/lib/floor-process.ts):
// - the bare floor: a server-side-apply client sending the artifact's objects
//   as they are, and nothing else;
// - the design's floor: what any controller that keeps our rules must do for
//   a first apply, done by a bare loop with no controller around it: build the
//   artifact with kustomize, record the StageInventory, then apply the objects
//   with the labels CONTRACT.md gives them.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeObject } from "../../src/api/types.js";
import { buildInventories, entriesOf, memberLabels } from "../../src/apply/inventory.js";
import { managedLabels } from "../../src/apply/objects.js";
import { listGeneratedResources, renderGeneratedKustomization } from "../../src/build/kustomization.js";
import { runKustomize } from "../../src/build/kustomize.js";
import type { KubeClient } from "../../src/kube/client.js";

/** The B1 artifact: `objects` ConfigMaps in one file; with `extraKey`, cm-0 also carries `removeme` (the key the second revision drops). */
export function bulkArtifactFiles(objects: number, extraKey: boolean): Record<string, string> {
  const docs = Array.from({ length: objects }, (_, i) => {
    const extra = extraKey && i === 0 ? '  removeme: "gone in revision 2"\n' : "";
    return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  labels: {app: bench}\ndata:\n  index: "${i}"\n  payload: "${"x".repeat(256)}"\n${extra}`;
  });
  return { "configmaps.yaml": docs.join("---\n") };
}

/**
 * The B1 artifact's `objects` ConfigMaps as the floor sends them, in
 * `namespace`: `cm-<i>` with a 256-byte payload; cm-0 also holds the key the
 * correctness check's second revision drops.
 */
export function floorObjects(objects: number, namespace: string): KubeObject[] {
  return Array.from({ length: objects }, (_, i) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `cm-${i}`, namespace, labels: { app: "bench" } },
    data: { index: String(i), payload: "x".repeat(256), ...(i === 0 ? { removeme: "gone in revision 2" } : {}) },
  }));
}

/** Server-side applies `objects` through `client`, `concurrency` at a time and nothing else; rejects with the first failure. */
export async function applyAllBare(client: KubeClient, objects: readonly KubeObject[], concurrency: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < objects.length) await client.apply(objects[next++]!, { fieldManager: "bench-floor", force: true });
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** The controller's default `--inventory-shard-cap`: the 1000 entries fit one StageInventory. */
const DEFAULT_SHARD_CAP = 5000;

/**
 * The kustomization a stage of a plain directory (the B1 artifact has none)
 * is built with: Flux's generated one, from src/build as the controller makes it.
 */
export async function generatedKustomization(dir: string): Promise<{ name: string; text: string }> {
  return { name: "kustomization.yaml", text: renderGeneratedKustomization(await listGeneratedResources(dir)) };
}

/**
 * The design's floor for B1, in `namespace`, as StageSet `bulk`'s stage
 * `bulk` in the default hybrid inventory mode: kbuild renders the B1 artifact
 * (`objects` ConfigMaps, from a directory written, and its kustomization
 * generated, before the clock starts),
 * the rendered JSON lines are parsed, placed in `namespace` and given our four
 * labels, the 1000-entry StageInventory is server-side applied, and then the
 * objects, `concurrency` at a time. Nothing else: no StageSet, no download,
 * no discovery, no status, no checks beyond JSON.parse.
 *
 * Returns its wall time in seconds, and the part of it each step took.
 * Rejects with the build's or the API server's error.
 */
export async function designFloor(
  client: KubeClient,
  namespace: string,
  objects: number,
  concurrency: number,
): Promise<{ seconds: number; buildSeconds: number; inventorySeconds: number }> {
  const root = mkdtempSync(join(tmpdir(), "bench-design-floor-"));
  try {
    for (const [name, text] of Object.entries(bulkArtifactFiles(objects, true))) writeFileSync(join(root, name), text);
    const owner = { name: "bulk", namespace };
    const labels = { ...memberLabels("hybrid", owner, "bulk"), ...managedLabels(owner, "bulk") };
    const kustomization = await generatedKustomization(root);
    const started = performance.now();
    const rendered = await runKustomize(root, root, { kustomization, output: "json-lines" });
    const desired = rendered
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const obj = JSON.parse(line) as KubeObject;
        return { ...obj, metadata: { ...obj.metadata, namespace, labels: { ...obj.metadata.labels, ...labels } } };
      });
    const built = performance.now();
    const inventories = buildInventories({ stageSet: owner, stage: "bulk", position: 0, entries: entriesOf(desired), mode: "hybrid", shardCap: DEFAULT_SHARD_CAP });
    for (const inventory of inventories) await client.apply(inventory, { fieldManager: "bench-floor", force: true });
    const recorded = performance.now();
    await applyAllBare(client, desired, concurrency);
    return { seconds: (performance.now() - started) / 1000, buildSeconds: (built - started) / 1000, inventorySeconds: (recorded - built) / 1000 };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

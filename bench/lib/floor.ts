// The B4 floor: a bare server-side-apply client and the objects it sends,
// shared by the in-process floor (bench/kustomize-controller.ts) and the one
// in a fresh process (bench/lib/floor-process.ts).
import type { KubeObject } from "../../src/api/types.js";
import type { KubeClient } from "../../src/kube/client.js";

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

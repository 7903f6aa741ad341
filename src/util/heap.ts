import { setFlagsFromString } from "node:v8";

/**
 * Sets V8's heap growing factor: after a full garbage collection the next
 * one is due once the old generation has grown by `percent` of what
 * survived (Go's GOGC, whose default 100 the Flux controllers run with).
 * V8's own heuristic (`percent` 0 leaves it in place) grows the limit by up
 * to 4× when collections are fast, which for this controller meant 510 MiB
 * of resident memory at B3 (100 StageSets) with ~100 MiB live; 100 kept it
 * near 330 MiB for the same time and CPU (bench/kustomize-controller.ts).
 *
 * V8 reads `--heap-growing-percent` at every full collection, so setting it
 * at start-up, after the process began, takes effect (checked in
 * test/unit/util/heap.test.ts).
 *
 * @param percent a whole number ≥ 0
 */
export function setHeapGrowth(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${Math.floor(percent)}`);
}

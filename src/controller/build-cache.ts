import { createHash } from "node:crypto";
import type { KubeObject, Stage } from "../api/types.js";
import type { VarSource } from "../build/index.js";

/** A ConfigMap or Secret a build read, and what it held (as a hash; never the values). */
interface Dependency {
  kind: "ConfigMap" | "Secret";
  namespace: string;
  name: string;
  hash: string;
}

interface Entry {
  objects: KubeObject[];
  dependencies: Dependency[];
  lastUsed: number;
}

/**
 * Remembers the rendered objects of a stage per (artifact digest, stage
 * spec), so a steady-state reconcile does not run kustomize again. At most
 * `maxConcurrentRenders` renders (each a kustomize process, ~30 MiB
 * resident) run at once; the others wait their turn in arrival order. A build
 * that read substitution variables from ConfigMaps or Secrets is reused only
 * if those still hold the same data (re-read on every lookup; compared by
 * hash, so no secret value is kept in memory beyond the rendered objects).
 */
export class BuildCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #maxConcurrentRenders: number;
  #rendering = 0;
  readonly #waiting: (() => void)[] = [];
  #clock = 0;

  /**
   * @param maxEntries renders kept (least recently used dropped first)
   * @param maxConcurrentRenders renders run at once (≥ 1; `--concurrent-builds`)
   */
  constructor(maxEntries = 64, maxConcurrentRenders = Number.POSITIVE_INFINITY) {
    this.#maxEntries = maxEntries;
    this.#maxConcurrentRenders = Math.max(1, maxConcurrentRenders);
  }

  /** Renders running now (for tests and metrics). */
  get rendering(): number {
    return this.#rendering;
  }

  async build(
    digest: string,
    stage: Stage,
    namespace: string,
    varSource: VarSource,
    render: (varSource: VarSource) => Promise<KubeObject[]>,
    /** Anything else the render depends on (e.g. decryption), as a string. */
    variant = "",
  ): Promise<KubeObject[]> {
    const key = `${cacheKey(digest, stage, namespace)}|${variant}`;
    const hit = this.#entries.get(key);
    if (hit && (await this.#stillValid(hit, varSource))) {
      hit.lastUsed = ++this.#clock;
      return structuredClone(hit.objects);
    }
    const dependencies: Dependency[] = [];
    const recording: VarSource = {
      getConfigMap: async (ns, name) => {
        const found = await varSource.getConfigMap(ns, name);
        dependencies.push({ kind: "ConfigMap", namespace: ns, name, hash: hashData(found) });
        return found;
      },
      getSecret: async (ns, name) => {
        const found = await varSource.getSecret(ns, name);
        dependencies.push({ kind: "Secret", namespace: ns, name, hash: hashData(found) });
        return found;
      },
    };
    const objects = await this.#inTurn(() => render(recording));
    this.#entries.set(key, { objects: structuredClone(objects), dependencies, lastUsed: ++this.#clock });
    this.#evict();
    return objects;
  }

  async #inTurn<T>(render: () => Promise<T>): Promise<T> {
    if (this.#rendering >= this.#maxConcurrentRenders) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#rendering++;
    try {
      return await render();
    } finally {
      // The slot passes straight to the next waiter, so a newcomer cannot overtake it.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#rendering--;
    }
  }

  async #stillValid(entry: Entry, varSource: VarSource): Promise<boolean> {
    for (const dep of entry.dependencies) {
      const now = dep.kind === "ConfigMap" ? await varSource.getConfigMap(dep.namespace, dep.name) : await varSource.getSecret(dep.namespace, dep.name);
      if (hashData(now) !== dep.hash) return false;
    }
    return true;
  }

  #evict(): void {
    while (this.#entries.size > this.#maxEntries) {
      let oldest: string | undefined;
      let oldestUse = Infinity;
      for (const [key, entry] of this.#entries) {
        if (entry.lastUsed < oldestUse) {
          oldest = key;
          oldestUse = entry.lastUsed;
        }
      }
      if (oldest === undefined) return;
      this.#entries.delete(oldest);
    }
  }
}

function cacheKey(digest: string, stage: Stage, namespace: string): string {
  const shape = { path: stage.path, patches: stage.patches, postBuild: stage.postBuild, namespace };
  return `${digest}|${createHash("sha256").update(JSON.stringify(shape)).digest("hex")}`;
}

function hashData(obj: { data?: Record<string, string> } | undefined): string {
  if (!obj) return "missing";
  const data = obj.data ?? {};
  const hash = createHash("sha256");
  for (const key of Object.keys(data).sort()) hash.update(key).update("\0").update(data[key] ?? "").update("\0");
  return hash.digest("hex");
}

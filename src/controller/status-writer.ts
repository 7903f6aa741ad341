import type { StageSet, StageSetStatus } from "../api/types.js";
import type { KubeClient } from "../kube/client.js";

/**
 * Writes a StageSet's status through the status subresource, and only when
 * it differs from what was last written: a steady-state reconcile makes no
 * status write at all.
 */
export class StatusWriter {
  readonly #client: KubeClient;
  readonly #ref: { apiVersion: string; kind: string; namespace: string; name: string };
  #written: string;

  constructor(client: KubeClient, stageSet: StageSet) {
    this.#client = client;
    this.#ref = {
      apiVersion: stageSet.apiVersion,
      kind: stageSet.kind,
      namespace: stageSet.metadata.namespace ?? "",
      name: stageSet.metadata.name ?? "",
    };
    this.#written = canonical(stageSet.status ?? {});
  }

  #queue: Promise<unknown> = Promise.resolve();

  /**
   * Writes `status` if it differs from the last write; true when it wrote.
   * Calls are serialized, so a late progress update never overtakes a later
   * status.
   */
  write(status: StageSetStatus): Promise<boolean> {
    const snapshot = structuredClone(status);
    const result = this.#queue.then(() => this.#write(snapshot));
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async #write(status: StageSetStatus): Promise<boolean> {
    const next = canonical(status);
    if (next === this.#written) return false;
    const previous = JSON.parse(this.#written) as Record<string, unknown>;
    const body: Record<string, unknown> = { ...JSON.parse(next) };
    // A merge patch keeps keys it does not mention; null removes them.
    for (const key of Object.keys(previous)) if (!(key in body)) body[key] = null;
    await this.#client.patch(this.#ref, { status: body }, "merge", { subresource: "status" });
    this.#written = next;
    return true;
  }
}

/** JSON with sorted keys and without undefined/empty values, so equal statuses compare equal. */
export function canonical(value: unknown): string {
  return JSON.stringify(normalize(value) ?? {});
}

function normalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = normalize((value as Record<string, unknown>)[key]);
      if (v === undefined || v === null) continue;
      if (Array.isArray(v) && v.length === 0) continue;
      if (typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0) continue;
      out[key] = v;
    }
    return out;
  }
  return value;
}

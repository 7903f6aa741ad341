import type { KubeObject } from "../../src/api/types.js";
import type { KubeClient } from "../../src/kube/client.js";

export interface RecordedEvent {
  type: "ADDED" | "MODIFIED" | "DELETED";
  kind: string;
  name: string;
  /** etcd revision of the change: globally ordered across kinds. */
  revision: number;
  /** When this process received the change (performance.now(), ms). */
  seen: number;
  object: KubeObject;
}

/**
 * Records every change to some kinds in one namespace (or cluster-wide kinds)
 * from real watches, so tests can assert the order things happened in by
 * etcd revision rather than by wall clock or logs.
 */
export class ChangeRecorder {
  readonly events: RecordedEvent[] = [];
  readonly #abort = new AbortController();
  readonly #loops: Promise<void>[] = [];

  static async start(client: KubeClient, watches: { apiVersion: string; kind: string; namespace?: string }[]): Promise<ChangeRecorder> {
    const recorder = new ChangeRecorder();
    for (const w of watches) {
      const list = await client.list(w.apiVersion, w.kind, { namespace: w.namespace });
      recorder.#loops.push(recorder.#run(client, w, list.resourceVersion));
    }
    return recorder;
  }

  async #run(client: KubeClient, w: { apiVersion: string; kind: string; namespace?: string }, resourceVersion: string): Promise<void> {
    try {
      for await (const event of client.watch(w.apiVersion, w.kind, { namespace: w.namespace, resourceVersion, signal: this.#abort.signal })) {
        if (event.type === "BOOKMARK") continue;
        this.events.push({
          type: event.type,
          kind: w.kind,
          name: event.object.metadata.name ?? "",
          revision: Number(event.object.metadata.resourceVersion),
          seen: performance.now(),
          object: event.object,
        });
      }
    } catch (err) {
      if (!this.#abort.signal.aborted) throw err;
    }
  }

  first(predicate: (e: RecordedEvent) => boolean): RecordedEvent | undefined {
    return this.events.find(predicate);
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#loops);
  }
}

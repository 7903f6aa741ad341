import type { KubeObject } from "../api/types.js";
import type { KubeClient } from "../kube/client.js";
import type { Informer } from "../kube/informer.js";
import { producerKey, type SourceReader } from "../source/resolve.js";
import { INDEX_BY_PRODUCER } from "./manager.js";

/**
 * Reads sources from the watch caches: the Flux kinds the manager watches are
 * served from memory, and producers are found through an index of
 * ExternalArtifacts by their `spec.sourceRef` back-pointer. Kinds that are not
 * cached (a producer's own kind, read only to confirm it exists) fall back to
 * a GET.
 */
export class CachedSourceReader implements SourceReader {
  readonly #sources: ReadonlyMap<string, Informer<KubeObject>>;
  readonly #client: KubeClient;

  constructor(sources: ReadonlyMap<string, Informer<KubeObject>>, client: KubeClient) {
    this.#sources = sources;
    this.#client = client;
  }

  async get(apiVersion: string, kind: string, namespace: string, name: string): Promise<KubeObject | undefined> {
    const informer = this.#sources.get(kind);
    if (informer && informer.apiVersion === apiVersion && informer.hasSynced()) return informer.get(namespace, name);
    return this.#client.get({ apiVersion, kind, namespace, name });
  }

  producersOf(group: string, kind: string, namespace: string, name: string): KubeObject[] {
    return this.#sources.get("ExternalArtifact")?.byIndex(INDEX_BY_PRODUCER, producerKey(group, kind, namespace, name)) ?? [];
  }
}

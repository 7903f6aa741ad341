import type { KubeObject } from "../api/types.js";
import type { KubeClient } from "../kube/client.js";
import { EXTERNAL_ARTIFACT_KIND, FLUX_SOURCE_API_VERSION, type SourceReader } from "../source/resolve.js";

/**
 * Source resolution by plain API reads, for the CLI (the controller reads
 * from its watch caches instead). Producers are found among the
 * ExternalArtifacts of their namespace, listed once per namespace;
 * resolveSource keeps only those whose back-pointer matches.
 */
export class ClusterSourceReader implements SourceReader {
  readonly #client: KubeClient;
  readonly #externalArtifacts = new Map<string, Promise<KubeObject[]>>();

  constructor(client: KubeClient) {
    this.#client = client;
  }

  get(apiVersion: string, kind: string, namespace: string, name: string): Promise<KubeObject | undefined> {
    return this.#client.get({ apiVersion, kind, namespace, name });
  }

  producersOf(_group: string, _kind: string, namespace: string): Promise<KubeObject[]> {
    let listed = this.#externalArtifacts.get(namespace);
    if (!listed) {
      listed = this.#client.listAll(FLUX_SOURCE_API_VERSION, EXTERNAL_ARTIFACT_KIND, { namespace }).then((list) => list.items);
      this.#externalArtifacts.set(namespace, listed);
    }
    return listed;
  }
}

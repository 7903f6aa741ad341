import { isNotFound, KindNotFoundError } from "./errors.js";
import type { Transport } from "./transport.js";

/** Where a kind lives on the API server. */
export interface ResourceInfo {
  /** "" for the core group. */
  group: string;
  version: string;
  kind: string;
  /** The plural resource name used in URLs, e.g. `deployments`. */
  resource: string;
  namespaced: boolean;
  verbs: string[];
}

interface APIResourceList {
  resources: { name: string; kind: string; namespaced: boolean; verbs?: string[] }[];
}

/** Splits `apps/v1` into group `apps`, version `v1`; `v1` is the core group. */
export function parseApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf("/");
  if (slash < 0) return { group: "", version: apiVersion };
  return { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** URL prefix of a group version: `/api/v1` or `/apis/apps/v1`. */
export function groupVersionPath(group: string, version: string): string {
  return group === "" ? `/api/${version}` : `/apis/${group}/${version}`;
}

/**
 * Kind → resource mapping, fetched per group version on first use and
 * re-fetched when a kind is missing, so CRDs installed after start-up are
 * found. Concurrent look-ups of the same group version share one request.
 */
export class Discovery {
  readonly #transport: Transport;
  readonly #byGroupVersion = new Map<string, Map<string, ResourceInfo>>();
  readonly #inFlight = new Map<string, Promise<Map<string, ResourceInfo>>>();

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  async resourceFor(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const cached = this.#byGroupVersion.get(apiVersion)?.get(kind);
    if (cached) return cached;
    const fresh = await this.#refresh(apiVersion);
    const found = fresh.get(kind);
    if (!found) throw new KindNotFoundError(apiVersion, kind);
    return found;
  }

  /** Forgets everything (e.g. after a CRD was deleted). */
  invalidate(): void {
    this.#byGroupVersion.clear();
  }

  #refresh(apiVersion: string): Promise<Map<string, ResourceInfo>> {
    let pending = this.#inFlight.get(apiVersion);
    if (!pending) {
      pending = this.#fetch(apiVersion).finally(() => this.#inFlight.delete(apiVersion));
      this.#inFlight.set(apiVersion, pending);
    }
    return pending;
  }

  async #fetch(apiVersion: string): Promise<Map<string, ResourceInfo>> {
    const { group, version } = parseApiVersion(apiVersion);
    const kinds = new Map<string, ResourceInfo>();
    try {
      const list = await this.#transport.json<APIResourceList>({
        verb: "discovery",
        method: "GET",
        path: groupVersionPath(group, version),
        operation: `discover ${apiVersion}`,
      });
      for (const r of list.resources) {
        if (r.name.includes("/")) continue; // subresources such as deployments/status
        kinds.set(r.kind, {
          group,
          version,
          kind: r.kind,
          resource: r.name,
          namespaced: r.namespaced,
          verbs: r.verbs ?? [],
        });
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    this.#byGroupVersion.set(apiVersion, kinds);
    return kinds;
  }
}

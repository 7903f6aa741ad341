import { KIND_NOT_SERVED_REQUEUE_MS } from "../errors.js";
import { isNotFound, KindNotFoundError, KubeApiError } from "./errors.js";
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

interface APIGroup {
  versions?: { groupVersion?: string; version?: string }[];
  preferredVersion?: { groupVersion?: string; version?: string };
}

/** The API group of CustomResourceDefinitions. */
const CRD_API_GROUP = "apiextensions.k8s.io";

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
 * The KindNotFoundError for `kind` in `apiVersion`, asking for a short
 * requeue (`requeueAfterMs`, {@link KIND_NOT_SERVED_REQUEUE_MS}): a kind that
 * is not served yet usually is soon, so wherever it ends a run, the run is
 * retried soon rather than after `retryInterval`.
 */
export function kindNotFound(apiVersion: string, kind: string): KindNotFoundError {
  const err = new KindNotFoundError(apiVersion, kind);
  err.requeueAfterMs = KIND_NOT_SERVED_REQUEUE_MS;
  return err;
}

/** `group/version`, or just `version` for the core group. */
function apiVersionOf(group: string, version: string): string {
  return group === "" ? version : `${group}/${version}`;
}

/**
 * Whether `err` says the API server has no route for the request's path, as
 * opposed to "this object does not exist". The API server answers a path no
 * resource serves (a deleted CustomResourceDefinition, a version it stopped
 * serving, a CRD not yet Established) with a plain-text `404 page not found`
 * from its fallback handler (k8s.io/apiserver notfoundhandler), and a resource
 * missing from a served group version with the Status message `the server
 * could not find the requested resource`; a missing object is a Status whose
 * message names the object. Only the first two mean the discovery cache is
 * stale.
 */
export function isUnservedPath(err: unknown): boolean {
  if (!(err instanceof KubeApiError) || err.status !== 404) return false;
  return /404 page not found|the server could not find the requested resource/i.test(err.serverMessage);
}

/**
 * The group a write to a CustomResourceDefinition changes the discovery of:
 * its `spec.group`, or (for a delete, which has only the name) the part of the
 * name after the first dot, since the API server requires CRDs to be named
 * `<plural>.<group>`. `undefined` when `ref` is not a CRD.
 */
export function crdGroupOf(ref: { apiVersion: string; kind: string; name: string; spec?: unknown }): string | undefined {
  if (ref.kind !== "CustomResourceDefinition" || parseApiVersion(ref.apiVersion).group !== CRD_API_GROUP) return undefined;
  const specGroup = (ref.spec as { group?: unknown } | undefined)?.group;
  if (typeof specGroup === "string" && specGroup !== "") return specGroup;
  const dot = ref.name.indexOf(".");
  return dot < 0 ? undefined : ref.name.slice(dot + 1);
}

/**
 * Kind → resource mapping, fetched per group version on first use. What it
 * remembers follows CustomResourceDefinition changes:
 *
 * - a kind missing from the cache is looked up again on every request, so a
 *   CRD installed (or Established) after start-up is found at once;
 * - {@link forgetGroup} drops a group's versions; the client calls it after
 *   every write to a CRD (so a CRD this process deletes, re-creates or
 *   changes is re-discovered on its next use), and {@link KubeClient} calls
 *   {@link forget} when a request for a cached kind hits a path the API
 *   server no longer serves (a CRD changed by someone else), then asks again.
 *
 * A forget during a discovery request wins: that request's answer is not
 * stored. Concurrent look-ups of the same group version share one request.
 */
export class Discovery {
  readonly #transport: Pick<Transport, "json">;
  readonly #byGroupVersion = new Map<string, Map<string, ResourceInfo>>();
  readonly #inFlight = new Map<string, Promise<Map<string, ResourceInfo>>>();
  /** Bumped by every forget; an answer fetched under an older epoch is returned but not stored. */
  #epoch = 0;

  /** `transport` sends the discovery requests (counted as verb `discovery`). */
  constructor(transport: Pick<Transport, "json">) {
    this.#transport = transport;
  }

  /**
   * Where `kind` of `apiVersion` is served. Answers from the cache when the
   * kind is in it, else asks the API server for the group version.
   * Throws KindNotFoundError when the group version does not serve the kind
   * (also when the group version itself is unknown: 404), and the
   * KubeApiError of any other failed discovery request (403, 503 of an
   * unavailable aggregated API, …).
   */
  async resourceFor(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const cached = this.#byGroupVersion.get(apiVersion)?.get(kind);
    if (cached) return cached;
    const fresh = await this.#refresh(apiVersion);
    const found = fresh.get(kind);
    if (!found) throw kindNotFound(apiVersion, kind);
    return found;
  }

  /**
   * The apiVersions of `group` that serve `kind`, the group's preferred
   * version first, then in the API server's order (newest stable first). The
   * group's version list is always asked for afresh (`GET /apis/<group>`);
   * each version's kinds come from the cache or discovery as in
   * {@link resourceFor}. Empty when no version serves the kind, or the group
   * is not served at all (404). Other discovery failures are thrown.
   */
  async servedVersions(group: string, kind: string): Promise<string[]> {
    let versions: string[];
    if (group === "") {
      versions = ["v1"];
    } else {
      let answer: APIGroup;
      try {
        answer = await this.#transport.json<APIGroup>({
          verb: "discovery",
          method: "GET",
          path: `/apis/${group}`,
          operation: `discover group ${group}`,
        });
      } catch (err) {
        if (isNotFound(err)) return [];
        throw err;
      }
      const listed = (answer.versions ?? []).map((v) => v.version).filter((v): v is string => !!v);
      const preferred = answer.preferredVersion?.version;
      versions = preferred && listed.includes(preferred) ? [preferred, ...listed.filter((v) => v !== preferred)] : listed;
    }
    const served: string[] = [];
    for (const version of versions) {
      const apiVersion = apiVersionOf(group, version);
      try {
        await this.resourceFor(apiVersion, kind);
        served.push(apiVersion);
      } catch (err) {
        if (!(err instanceof KindNotFoundError)) throw err;
      }
    }
    return served;
  }

  /** Forgets one group version (`apps/v1`), e.g. after a request for one of its kinds found no route. */
  forget(apiVersion: string): void {
    this.#epoch++;
    this.#byGroupVersion.delete(apiVersion);
    this.#inFlight.delete(apiVersion);
  }

  /** Forgets every version of `group` ("" for core), e.g. after its CustomResourceDefinition was written or deleted. */
  forgetGroup(group: string): void {
    this.#epoch++;
    for (const map of [this.#byGroupVersion, this.#inFlight]) {
      for (const apiVersion of [...map.keys()]) {
        if (parseApiVersion(apiVersion).group === group) map.delete(apiVersion);
      }
    }
  }

  /** Forgets everything. */
  invalidate(): void {
    this.#epoch++;
    this.#byGroupVersion.clear();
    this.#inFlight.clear();
  }

  #refresh(apiVersion: string): Promise<Map<string, ResourceInfo>> {
    let pending = this.#inFlight.get(apiVersion);
    if (!pending) {
      const started = this.#fetch(apiVersion);
      pending = started.finally(() => {
        if (this.#inFlight.get(apiVersion) === pending) this.#inFlight.delete(apiVersion);
      });
      this.#inFlight.set(apiVersion, pending);
    }
    return pending;
  }

  async #fetch(apiVersion: string): Promise<Map<string, ResourceInfo>> {
    const epoch = this.#epoch;
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
    // Something was forgotten while this request was under way: its answer
    // may predate the change, so it serves this caller only.
    if (epoch === this.#epoch) this.#byGroupVersion.set(apiVersion, kinds);
    return kinds;
  }
}

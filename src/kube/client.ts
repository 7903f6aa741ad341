import { createInterface } from "node:readline";
import type { KubeConfigSource } from "./kubeconfig-file.js";
import type { KubeObject } from "../api/types.js";
import { crdGroupOf, Discovery, groupVersionPath, isUnservedPath, kindNotFound, type ResourceInfo } from "./discovery.js";
import { isNotFound, KubeApiError } from "./errors.js";
import { parseRemoteKubeConfig, type RemoteKubeConfigOptions } from "./kubeconfig.js";
import { Transport, WRITE_VERBS, type Identity, type RequestSpec, type RequestStats, type Verb } from "./transport.js";

export type { Identity, RequestStats, Verb } from "./transport.js";
export type { ResourceInfo } from "./discovery.js";

/** Points at one object. `namespace` is ignored for cluster-scoped kinds. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface ListOptions {
  /** Omit for all namespaces (or for cluster-scoped kinds). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size; the answer then carries `continue` when more remain. */
  limit?: number;
  continue?: string;
  /** `"0"` serves from the API server's watch cache (cheaper, possibly stale). */
  resourceVersion?: string;
  signal?: AbortSignal;
}

export interface ObjectList<T extends KubeObject = KubeObject> {
  items: T[];
  /** The collection's resourceVersion: start a watch from here. */
  resourceVersion: string;
  /** Present when `limit` cut the answer short; pass it back to get the next page. */
  continue?: string;
}

export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Start after this version (from a list); omit to start with synthetic ADDED events for the current state. */
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  /** The server ends the watch after this long; default 5–10 minutes, jittered like client-go. */
  timeoutSeconds?: number;
  signal?: AbortSignal;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";

export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: WatchEventType;
  /** For BOOKMARK only `metadata.resourceVersion` is meaningful. */
  object: T;
}

export interface WriteOptions {
  /** Validate and default server-side, persist nothing. */
  dryRun?: boolean;
  fieldManager?: string;
  timeoutMs?: number;
}

export interface ApplyOptions extends WriteOptions {
  fieldManager: string;
  /** Take ownership of fields other managers own instead of failing with Conflict. */
  force?: boolean;
}

export type PatchType = "merge" | "json" | "strategic";

export interface PatchOptions extends WriteOptions {
  subresource?: string;
}

export interface DeleteOptions {
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
  preconditions?: { uid?: string; resourceVersion?: string };
  gracePeriodSeconds?: number;
  dryRun?: boolean;
  timeoutMs?: number;
}

export interface KubeClientOptions {
  /** Per-request deadline (watches excepted); default 30s. */
  timeoutMs?: number;
  userAgent?: string;
}

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
};

/**
 * A small REST client for one API server, working on plain JSON objects.
 * Authentication comes from a kubeconfig (src/kube/kubeconfig-file.ts, or
 * client-node's KubeConfig: files, KUBECONFIG, in-cluster, exec plugins,
 * tokens, client certificates). Clients derived
 * with {@link impersonate} share the connection pool, the discovery cache and
 * the request counters.
 */
export class KubeClient {
  readonly #transport: Transport;
  readonly #discovery: Discovery;
  readonly #identity: Identity | undefined;

  private constructor(transport: Transport, discovery: Discovery, identity: Identity | undefined) {
    this.#transport = transport;
    this.#discovery = discovery;
    this.#identity = identity;
  }

  /** A client for the cluster `kubeConfig`'s current context points at. */
  static fromKubeConfig(kubeConfig: KubeConfigSource, options: KubeClientOptions = {}): KubeClient {
    const transport = new Transport(kubeConfig, options);
    return new KubeClient(transport, new Discovery(transport), undefined);
  }

  /** A client for another cluster from an untrusted kubeconfig (see {@link parseRemoteKubeConfig}). */
  static fromKubeConfigString(text: string, options: RemoteKubeConfigOptions & KubeClientOptions): KubeClient {
    return KubeClient.fromKubeConfig(parseRemoteKubeConfig(text, options), options);
  }

  /** The same connection, acting as `identity` (Impersonate-User / Impersonate-Group headers). */
  impersonate(identity: Identity): KubeClient {
    return new KubeClient(this.#transport, this.#discovery, identity);
  }

  /**
   * Acting as ServiceAccount `namespace/name`. Only `Impersonate-User` is
   * sent: the API server adds the account's groups itself, so impersonating a
   * ServiceAccount needs `impersonate` on serviceaccounts only, never on
   * groups (a right that would let the controller act as any group,
   * system:masters included).
   */
  asServiceAccount(namespace: string, name: string): KubeClient {
    return this.impersonate({ user: serviceAccountIdentity(namespace, name).user });
  }

  /** The impersonated identity, if any. */
  get identity(): Identity | undefined {
    return this.#identity;
  }

  /** The API server URL. */
  get server(): string {
    return this.#transport.server.href;
  }

  /** Requests sent so far, by verb, across this client and every client derived from it. */
  stats(): RequestStats {
    return this.#transport.stats();
  }

  /** Sum of create/update/patch/apply/delete requests. */
  writeCount(): number {
    const stats = this.#transport.stats();
    let total = 0;
    for (const verb of WRITE_VERBS) total += stats[verb];
    return total;
  }

  resetStats(): void {
    this.#transport.resetStats();
  }

  /** Closes idle keep-alive connections. Open watches end. */
  close(): void {
    this.#transport.close();
  }

  /**
   * Where the API server serves `kind` of `apiVersion` (cached discovery, see
   * {@link Discovery}). Throws KindNotFoundError when it does not serve it.
   */
  resourceFor(apiVersion: string, kind: string): Promise<ResourceInfo> {
    return this.#discovery.resourceFor(apiVersion, kind);
  }

  /**
   * The apiVersions of `group` ("" for core) that serve `kind`, preferred
   * version first; empty when none does. For reading an object through
   * another version than the one it was recorded with (prune of a version a
   * CRD stopped serving). Throws the KubeApiError of a failed discovery request.
   */
  servedVersions(group: string, kind: string): Promise<string[]> {
    return this.#discovery.servedVersions(group, kind);
  }

  /** Drops the discovery cache. */
  invalidateDiscovery(): void {
    this.#discovery.invalidate();
  }

  /**
   * Runs `send` with where `kind` is served. When the answer is "no such
   * path" (the cached kind is no longer served there: its CRD was deleted,
   * re-created with another scope, or stopped serving the version), forgets
   * the group version, discovers it again and sends once more; when the kind
   * is not served any more that is a KindNotFoundError instead of a 404, so
   * callers tell "the object is gone" from "its kind is gone". A request for
   * a subresource the kind does not have (`status` of a CRD without one) gets
   * the same answer as an unserved path; it ends with the API server's 404.
   */
  async #withKind<T>(
    apiVersion: string,
    kind: string,
    send: (info: ResourceInfo) => Promise<T>,
    subresource?: string,
  ): Promise<T> {
    const info = await this.resourceFor(apiVersion, kind);
    try {
      return await send(info);
    } catch (err) {
      if (!isUnservedPath(err)) throw err;
      this.#discovery.forget(apiVersion);
      const fresh = await this.resourceFor(apiVersion, kind);
      try {
        return await send(fresh);
      } catch (again) {
        // Discovery lists the kind but the API server does not route it yet
        // (a CRD between discovery and its handler): not served.
        if (isUnservedPath(again) && !subresource) {
          this.#discovery.forget(apiVersion);
          throw kindNotFound(apiVersion, kind);
        }
        throw again;
      }
    }
  }

  /** After a write to a CustomResourceDefinition, what discovery knew of its group is stale. */
  #afterWrite(ref: { apiVersion: string; kind: string; name: string; spec?: unknown }, dryRun: boolean | undefined): void {
    if (dryRun) return;
    const group = crdGroupOf(ref);
    if (group !== undefined) this.#discovery.forgetGroup(group);
  }

  async get<T extends KubeObject = KubeObject>(
    ref: ObjectRef,
    options: { subresource?: string; timeoutMs?: number } = {},
  ): Promise<T | undefined> {
    try {
      return await this.#withKind(ref.apiVersion, ref.kind, (info) =>
        this.#call<T>(info, "get", "GET", ref, { subresource: options.subresource, timeoutMs: options.timeoutMs }),
        options.subresource,
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** One page (or, without `limit`, everything). Items carry apiVersion and kind. */
  async list<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    options: ListOptions = {},
  ): Promise<ObjectList<T>> {
    const raw = await this.#withKind(apiVersion, kind, (info) => this.#transport.json<{ items: T[] | null; metadata: { resourceVersion: string; continue?: string } }>({
      verb: "list",
      method: "GET",
      path: collectionPath(info, options.namespace),
      query: {
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        limit: options.limit,
        continue: options.continue,
        resourceVersion: options.resourceVersion,
      },
      operation: `list ${describeCollection(info, options.namespace)}`,
      identity: this.#identity,
      signal: options.signal,
    }));
    const items = raw.items ?? [];
    // The API server omits apiVersion/kind on list items.
    for (const item of items) {
      item.apiVersion = apiVersion;
      item.kind = kind;
    }
    const result: ObjectList<T> = { items, resourceVersion: raw.metadata.resourceVersion };
    if (raw.metadata.continue) result.continue = raw.metadata.continue;
    return result;
  }

  /** Follows `continue` tokens through every page of `pageSize` (default 500). */
  async listAll<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    options: Omit<ListOptions, "limit" | "continue"> & { pageSize?: number } = {},
  ): Promise<ObjectList<T>> {
    const { pageSize = 500, ...rest } = options;
    const items: T[] = [];
    let page: ObjectList<T> | undefined;
    do {
      page = await this.list<T>(apiVersion, kind, { ...rest, limit: pageSize, continue: page?.continue });
      items.push(...page.items);
    } while (page.continue);
    return { items, resourceVersion: page.resourceVersion };
  }

  /**
   * Streams watch events until the server ends the watch, the signal aborts
   * (the iteration then just ends) or the watch fails: an ERROR event is
   * thrown as {@link KubeApiError} (`isGone` when the resourceVersion is too
   * old — relist then).
   */
  async *watch<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    options: WatchOptions = {},
  ): AsyncGenerator<WatchEvent<T>, void, undefined> {
    const timeoutSeconds = options.timeoutSeconds ?? Math.floor(300 * (1 + Math.random()));
    const specFor = (info: ResourceInfo): RequestSpec => ({
      verb: "watch",
      method: "GET",
      path: collectionPath(info, options.namespace),
      query: {
        watch: true,
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        resourceVersion: options.resourceVersion,
        allowWatchBookmarks: options.allowWatchBookmarks,
        timeoutSeconds,
      },
      operation: `watch ${describeCollection(info, options.namespace)}`,
      identity: this.#identity,
      signal: options.signal,
    });
    let operation = `watch ${kind} (${apiVersion})`;
    let res;
    try {
      res = await this.#withKind(apiVersion, kind, (info) => {
        const spec = specFor(info);
        operation = spec.operation;
        return this.#transport.stream(spec);
      });
    } catch (err) {
      if (options.signal?.aborted) return;
      throw err;
    }
    // A connection that died silently would otherwise hang forever: the
    // server ends every watch after timeoutSeconds, so silence well past
    // that means the peer is gone.
    const idleLimitMs = (timeoutSeconds + 60) * 1000;
    res.setTimeout(idleLimitMs, () => res.destroy(new Error(`watch silent for ${idleLimitMs / 1000}s`)));
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (!line) continue;
        const event = JSON.parse(line) as { type: WatchEventType | "ERROR"; object: T };
        if (event.type === "ERROR") {
          const status = event.object as unknown as { code?: number; reason?: string; message?: string };
          throw new KubeApiError({
            status: status.code ?? 500,
            reason: status.reason ?? "Unknown",
            serverMessage: status.message ?? "watch failed",
            operation,
          });
        }
        if (event.type !== "BOOKMARK") {
          event.object.apiVersion = apiVersion;
          event.object.kind = kind;
        }
        yield event as WatchEvent<T>;
      }
    } catch (err) {
      if (options.signal?.aborted) return;
      if (err instanceof KubeApiError || err instanceof SyntaxError) throw err;
      throw new KubeApiError(
        { status: 0, reason: "ConnectionFailed", serverMessage: (err as Error).message, operation },
        { cause: err },
      );
    } finally {
      lines.close();
      res.destroy();
    }
  }

  /** Server-side apply: PATCH application/apply-patch+yaml with the object as JSON. Returns the live object. */
  apply<T extends KubeObject = KubeObject>(obj: KubeObject, options: ApplyOptions): Promise<T> {
    return this.#apply<T>(obj, options);
  }

  /** Server-side apply of `status` (the object needs apiVersion, kind, metadata.name/namespace and status). */
  applyStatus<T extends KubeObject = KubeObject>(obj: KubeObject, options: ApplyOptions): Promise<T> {
    return this.#apply<T>(obj, options, "status");
  }

  async create<T extends KubeObject = KubeObject>(obj: KubeObject, options: WriteOptions = {}): Promise<T> {
    const ref = refOf(obj);
    const created = await this.#withKind(ref.apiVersion, ref.kind, (info) =>
      this.#transport.json<T>({
        verb: "create",
        method: "POST",
        path: collectionPath(info, info.namespaced ? requireNamespace(info, ref) : undefined),
        query: writeQuery(options),
        body: obj,
        operation: `create ${describe(info, ref)}`,
        identity: this.#identity,
        timeoutMs: options.timeoutMs,
      }),
    );
    this.#afterWrite({ ...ref, spec: obj.spec }, options.dryRun);
    return created;
  }

  /** PUT: fails with Conflict when `metadata.resourceVersion` is stale. */
  update<T extends KubeObject = KubeObject>(obj: KubeObject, options: WriteOptions = {}): Promise<T> {
    return this.#put<T>(obj, options);
  }

  updateStatus<T extends KubeObject = KubeObject>(obj: KubeObject, options: WriteOptions = {}): Promise<T> {
    return this.#put<T>(obj, options, "status");
  }

  async patch<T extends KubeObject = KubeObject>(
    ref: ObjectRef,
    body: unknown,
    type: PatchType,
    options: PatchOptions = {},
  ): Promise<T> {
    const patched = await this.#withKind(ref.apiVersion, ref.kind, (info) =>
      this.#call<T>(info, "patch", "PATCH", ref, {
        subresource: options.subresource,
        query: writeQuery(options),
        body,
        contentType: PATCH_CONTENT_TYPES[type],
        timeoutMs: options.timeoutMs,
      }),
      options.subresource,
    );
    this.#afterWrite(ref, options.dryRun);
    return patched;
  }

  /**
   * Returns false when the object was already gone. Throws KindNotFoundError
   * when its kind is not served (then no object of it can be deleted through
   * `ref.apiVersion`).
   */
  async delete(ref: ObjectRef, options: DeleteOptions = {}): Promise<boolean> {
    const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
    if (options.propagationPolicy) body.propagationPolicy = options.propagationPolicy;
    if (options.preconditions) body.preconditions = options.preconditions;
    if (options.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = options.gracePeriodSeconds;
    if (options.dryRun) body.dryRun = ["All"];
    try {
      await this.#withKind(ref.apiVersion, ref.kind, (info) =>
        this.#call(info, "delete", "DELETE", ref, { body, timeoutMs: options.timeoutMs }),
      );
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    } finally {
      this.#afterWrite(ref, options.dryRun);
    }
  }

  async #apply<T extends KubeObject>(obj: KubeObject, options: ApplyOptions, subresource?: string): Promise<T> {
    const ref = refOf(obj);
    const applied = await this.#withKind(ref.apiVersion, ref.kind, (info) =>
      this.#call<T>(info, "apply", "PATCH", ref, {
        subresource,
        query: { ...writeQuery(options), force: options.force ? true : undefined },
        body: obj,
        contentType: "application/apply-patch+yaml",
        timeoutMs: options.timeoutMs,
      }),
      subresource,
    );
    this.#afterWrite({ ...ref, spec: obj.spec }, options.dryRun);
    return applied;
  }

  async #put<T extends KubeObject>(obj: KubeObject, options: WriteOptions, subresource?: string): Promise<T> {
    const ref = refOf(obj);
    const updated = await this.#withKind(ref.apiVersion, ref.kind, (info) =>
      this.#call<T>(info, "update", "PUT", ref, {
        subresource,
        query: writeQuery(options),
        body: obj,
        timeoutMs: options.timeoutMs,
      }),
      subresource,
    );
    this.#afterWrite({ ...ref, spec: obj.spec }, options.dryRun);
    return updated;
  }

  #call<T>(
    info: ResourceInfo,
    verb: Verb,
    method: RequestSpec["method"],
    ref: ObjectRef,
    extra: Pick<RequestSpec, "query" | "body" | "contentType" | "timeoutMs"> & { subresource?: string | undefined },
  ): Promise<T> {
    const namespace = info.namespaced ? requireNamespace(info, ref) : undefined;
    let path = `${collectionPath(info, namespace)}/${encodeURIComponent(ref.name)}`;
    if (extra.subresource) path += `/${extra.subresource}`;
    return this.#transport.json<T>({
      verb,
      method,
      path,
      query: extra.query,
      body: extra.body,
      contentType: extra.contentType,
      operation: `${verb} ${describe(info, ref)}${extra.subresource ? ` (${extra.subresource})` : ""}`,
      identity: this.#identity,
      timeoutMs: extra.timeoutMs,
    });
  }
}

/** The identity the API server gives ServiceAccount `namespace/name`. */
export function serviceAccountIdentity(namespace: string, name: string): Identity {
  return {
    user: `system:serviceaccount:${namespace}:${name}`,
    groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"],
  };
}

export function refOf(obj: KubeObject): ObjectRef {
  if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) {
    throw new TypeError(
      `object ${obj.kind ?? "<no kind>"} ${obj.metadata?.name ?? "<no name>"} needs apiVersion, kind and metadata.name`,
    );
  }
  const ref: ObjectRef = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name };
  if (obj.metadata.namespace) ref.namespace = obj.metadata.namespace;
  return ref;
}

function requireNamespace(info: ResourceInfo, ref: ObjectRef): string {
  if (!ref.namespace) {
    throw new TypeError(`${ref.kind} ${ref.name} is namespaced (${info.resource}) but no namespace was given`);
  }
  return ref.namespace;
}

function collectionPath(info: ResourceInfo, namespace: string | undefined): string {
  const base = groupVersionPath(info.group, info.version);
  return info.namespaced && namespace
    ? `${base}/namespaces/${encodeURIComponent(namespace)}/${info.resource}`
    : `${base}/${info.resource}`;
}

function qualifiedResource(info: ResourceInfo): string {
  return info.group ? `${info.resource}.${info.group}` : info.resource;
}

function describe(info: ResourceInfo, ref: ObjectRef): string {
  return info.namespaced
    ? `${qualifiedResource(info)} ${ref.namespace}/${ref.name}`
    : `${qualifiedResource(info)} ${ref.name}`;
}

function describeCollection(info: ResourceInfo, namespace: string | undefined): string {
  return info.namespaced && namespace
    ? `${qualifiedResource(info)} in namespace ${namespace}`
    : qualifiedResource(info);
}

function writeQuery(options: WriteOptions): Record<string, string | undefined> {
  return { fieldManager: options.fieldManager, dryRun: options.dryRun ? "All" : undefined };
}

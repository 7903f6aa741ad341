import type { KubeObject } from "../api/types.js";
import { pause, systemClock, type Clock, type Timer } from "../util/clock.js";
import { backoffDelay, withJitter, type BackoffPolicy } from "./backoff.js";
import type { KubeClient } from "./client.js";
import { isGone } from "./errors.js";

/** The two calls an informer needs; a {@link KubeClient} provides them. */
export type ListWatchClient = Pick<KubeClient, "listAll" | "watch">;

export interface InformerHandlers<T extends KubeObject> {
  onAdd?(obj: T): void;
  /** Also called with `oldObj === newObj` on every periodic resync. */
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

/** Maps an object to the index keys it is found under. */
export type IndexFunc<T extends KubeObject> = (obj: T) => string[];

export interface InformerOptions {
  apiVersion: string;
  kind: string;
  /** Watch only these namespaces (one list+watch each); empty or omitted is cluster-wide. */
  namespaces?: string[];
  labelSelector?: string;
  fieldSelector?: string;
  /** Re-deliver every cached object to `onUpdate` this often; 0 (default) disables. */
  resyncPeriodMs?: number;
  /** List page size; default 500. */
  pageSize?: number;
  /** Reconnect backoff after failures; default 800ms doubling to 30s (client-go's). */
  backoff?: BackoffPolicy;
  /** Told about list/watch failures and handler exceptions (the informer keeps going). */
  onError?(err: unknown): void;
  /** Times the periodic resync and the reconnect backoff; default the system clock. */
  clock?: Clock;
}

/** `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: Pick<KubeObject, "metadata">): string {
  const { namespace, name } = obj.metadata;
  return namespace ? `${namespace}/${name}` : (name ?? "");
}

interface Index<T extends KubeObject> {
  fn: IndexFunc<T>;
  byKey: Map<string, Set<string>>;
}

const DEFAULT_RECONNECT_BACKOFF: BackoffPolicy = { baseMs: 800, maxMs: 30_000 };

/**
 * A watch-backed cache of one kind: lists, then watches from the list's
 * resourceVersion (with bookmarks), relists when the watch expires (410),
 * reconnects with backoff on network failures. Objects handed out are the
 * cached instances: treat them as read-only.
 */
export class Informer<T extends KubeObject = KubeObject> {
  readonly apiVersion: string;
  readonly kind: string;
  readonly #client: ListWatchClient;
  readonly #options: InformerOptions;
  readonly #store = new Map<string, T>();
  readonly #indexes = new Map<string, Index<T>>();
  /** Index keys each object is filed under, per index, to unfile it on change. */
  readonly #filedUnder = new Map<string, Map<string, string[]>>();
  readonly #handlers = new Set<InformerHandlers<T>>();
  readonly #unsyncedScopes: Set<string>;
  #syncWaiters: ((synced: boolean) => void)[] = [];
  #abort: AbortController | undefined;
  #loops: Promise<void>[] = [];
  #resyncTimer: Timer | undefined;
  readonly #clock: Clock;

  constructor(client: ListWatchClient, options: InformerOptions) {
    this.#client = client;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.apiVersion = options.apiVersion;
    this.kind = options.kind;
    this.#unsyncedScopes = new Set(this.#scopes());
  }

  /** Registers handlers; objects already cached are delivered to `onAdd` at once. Returns an unsubscribe. */
  addHandlers(handlers: InformerHandlers<T>): () => void {
    this.#handlers.add(handlers);
    if (handlers.onAdd) for (const obj of this.#store.values()) this.#deliver(() => handlers.onAdd!(obj));
    return () => this.#handlers.delete(handlers);
  }

  /** Adds a secondary index; may be called before or after start. */
  addIndex(name: string, fn: IndexFunc<T>): void {
    if (this.#indexes.has(name)) throw new Error(`index ${name} already exists on the ${this.kind} informer`);
    this.#indexes.set(name, { fn, byKey: new Map() });
    for (const [key, obj] of this.#store) this.#fileIndex(name, key, obj);
  }

  /** Objects filed under `indexKey` in index `name`. */
  byIndex(name: string, indexKey: string): T[] {
    const index = this.#indexes.get(name);
    if (!index) throw new Error(`no index ${name} on the ${this.kind} informer`);
    const keys = index.byKey.get(indexKey);
    if (!keys) return [];
    const out: T[] = [];
    for (const key of keys) {
      const obj = this.#store.get(key);
      if (obj) out.push(obj);
    }
    return out;
  }

  /** The cached object; pass `undefined` namespace for cluster-scoped kinds. */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.#store.get(namespace ? `${namespace}/${name}` : name);
  }

  /** Cached objects, all or in one namespace. */
  list(namespace?: string): T[] {
    const all = [...this.#store.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  get size(): number {
    return this.#store.size;
  }

  /** True once every watched namespace (or the whole cluster) has been listed. */
  hasSynced(): boolean {
    return this.#unsyncedScopes.size === 0;
  }

  /** Resolves true once synced, false if the informer stops or `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.hasSynced()) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        this.#syncWaiters = this.#syncWaiters.filter((w) => w !== waiter);
        resolve(false);
      };
      const waiter = (synced: boolean): void => {
        signal?.removeEventListener("abort", onAbort);
        resolve(synced);
      };
      this.#syncWaiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  start(): void {
    if (this.#abort) throw new Error(`the ${this.kind} informer was already started`);
    this.#abort = new AbortController();
    const signal = this.#abort.signal;
    this.#loops = this.#scopes().map((scope) => this.#listAndWatch(scope, signal));
    const resync = this.#options.resyncPeriodMs ?? 0;
    if (resync > 0) this.#scheduleResync(resync, signal);
  }

  /** Stops watching; the cache keeps its last state. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    this.#resyncTimer?.cancel();
    this.#resyncTimer = undefined;
    for (const waiter of this.#syncWaiters.splice(0)) waiter(false);
    await Promise.all(this.#loops);
  }

  /** "" is the cluster-wide scope. */
  #scopes(): string[] {
    const namespaces = this.#options.namespaces?.filter(Boolean) ?? [];
    return namespaces.length > 0 ? [...new Set(namespaces)] : [""];
  }

  async #listAndWatch(scope: string, signal: AbortSignal): Promise<void> {
    const namespace = scope || undefined;
    const { labelSelector, fieldSelector } = this.#options;
    const backoff = this.#options.backoff ?? DEFAULT_RECONNECT_BACKOFF;
    let resourceVersion: string | undefined;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          const list = await this.#client.listAll<T>(this.apiVersion, this.kind, {
            namespace,
            labelSelector,
            fieldSelector,
            pageSize: this.#options.pageSize,
            signal,
          });
          if (signal.aborted) return;
          this.#replace(scope, list.items);
          resourceVersion = list.resourceVersion;
          this.#markSynced(scope);
        }
        const events = this.#client.watch<T>(this.apiVersion, this.kind, {
          namespace,
          labelSelector,
          fieldSelector,
          resourceVersion,
          allowWatchBookmarks: true,
          signal,
        });
        for await (const event of events) {
          resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
          failures = 0;
          if (event.type === "DELETED") this.#remove(event.object);
          else if (event.type !== "BOOKMARK") this.#upsert(event.object);
        }
        // The server closed the watch (its timeout): watch again from where we are.
      } catch (err) {
        if (signal.aborted) return;
        failures++;
        if (isGone(err)) {
          resourceVersion = undefined;
          // The first relist is immediate; repeated expiries back off like any failure.
          if (failures === 1) continue;
        } else {
          this.#options.onError?.(err);
        }
        await pause(this.#clock, withJitter(backoffDelay(failures - 1, backoff)), signal);
      }
    }
  }

  #replace(scope: string, items: T[]): void {
    const fresh = new Map(items.map((obj) => [objectKey(obj), obj]));
    for (const [key, obj] of this.#store) {
      if ((scope === "" || obj.metadata.namespace === scope) && !fresh.has(key)) this.#remove(obj);
    }
    for (const obj of items) this.#upsert(obj);
  }

  #upsert(obj: T): void {
    const key = objectKey(obj);
    const old = this.#store.get(key);
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    this.#store.set(key, obj);
    for (const name of this.#indexes.keys()) this.#fileIndex(name, key, obj);
    for (const h of this.#handlers) {
      if (old) {
        if (h.onUpdate) this.#deliver(() => h.onUpdate!(old, obj));
      } else if (h.onAdd) this.#deliver(() => h.onAdd!(obj));
    }
  }

  #remove(obj: T): void {
    const key = objectKey(obj);
    const cached = this.#store.get(key);
    if (!cached) return;
    this.#store.delete(key);
    for (const name of this.#indexes.keys()) this.#unfileIndex(name, key);
    this.#filedUnder.delete(key);
    for (const h of this.#handlers) if (h.onDelete) this.#deliver(() => h.onDelete!(obj));
  }

  #fileIndex(name: string, key: string, obj: T): void {
    this.#unfileIndex(name, key);
    const index = this.#indexes.get(name)!;
    let values: string[];
    try {
      values = [...new Set(index.fn(obj))];
    } catch (err) {
      this.#options.onError?.(err);
      values = [];
    }
    for (const value of values) {
      let keys = index.byKey.get(value);
      if (!keys) index.byKey.set(value, (keys = new Set()));
      keys.add(key);
    }
    let perIndex = this.#filedUnder.get(key);
    if (!perIndex) this.#filedUnder.set(key, (perIndex = new Map()));
    perIndex.set(name, values);
  }

  #unfileIndex(name: string, key: string): void {
    const previous = this.#filedUnder.get(key)?.get(name);
    if (!previous) return;
    const index = this.#indexes.get(name)!;
    for (const value of previous) {
      const keys = index.byKey.get(value);
      keys?.delete(key);
      if (keys?.size === 0) index.byKey.delete(value);
    }
    this.#filedUnder.get(key)?.delete(name);
  }

  #markSynced(scope: string): void {
    if (!this.#unsyncedScopes.delete(scope) || !this.hasSynced()) return;
    for (const waiter of this.#syncWaiters.splice(0)) waiter(true);
  }

  /** Resyncs every `periodMs` on the clock until `signal` aborts. */
  #scheduleResync(periodMs: number, signal: AbortSignal): void {
    this.#resyncTimer = this.#clock.setTimer(periodMs, () => {
      if (signal.aborted) return;
      this.#resync();
      this.#scheduleResync(periodMs, signal);
    });
  }

  #resync(): void {
    for (const obj of this.#store.values()) {
      for (const h of this.#handlers) if (h.onUpdate) this.#deliver(() => h.onUpdate!(obj, obj));
    }
  }

  #deliver(call: () => void): void {
    try {
      call();
    } catch (err) {
      this.#options.onError?.(err);
    }
  }
}

import type { KubeObject, StageSet } from "../api/types.js";
import { API_VERSION, STAGESET_KIND } from "../api/types.js";
import type { KubeClient } from "../kube/client.js";
import type { EventRecorder } from "../kube/events.js";
import { KindNotFoundError, KubeApiError } from "../kube/errors.js";
import { Informer, objectKey } from "../kube/informer.js";
import { LeaderElector } from "../kube/leader-election.js";
import { WorkQueue, type KeyHandler, type WorkQueueMetrics } from "../kube/workqueue.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { producerIndexKeys } from "../source/resolve.js";
import { dependencyKeysOf, keysForSourceEvent, sourceKeysOf } from "./watch-index.js";

export const SOURCE_API_VERSION = "source.toolkit.fluxcd.io/v1";
/** The Flux source kinds watched; producers publish through ExternalArtifact. */
export const SOURCE_KINDS = ["ExternalArtifact", "GitRepository", "OCIRepository", "Bucket"] as const;

export const INDEX_BY_SOURCE = "source";
export const INDEX_BY_DEPENDENCY = "dependsOn";
/** ExternalArtifacts by the producer their `spec.sourceRef` points back at. */
export const INDEX_BY_PRODUCER = "producer";

export interface ManagerOptions {
  client: KubeClient;
  log: Logger;
  events: EventRecorder;
  /** Empty watches the whole cluster. */
  watchNamespaces: string[];
  concurrency: number;
  /** When set, only the holder of the Lease reconciles. */
  leaderElection?: {
    namespace: string;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
    identity?: string;
    /** Release the Lease on stop (default false: the next leader waits for it to expire, as documented). */
    releaseOnCancel?: boolean;
  };
  /** Periodic re-delivery of every StageSet, a safety net under requeue-after. */
  resyncPeriodMs?: number;
  queueMetrics?: WorkQueueMetrics;
  /**
   * Times leader election (retry pauses, renew deadline, lease expiry) and the
   * work queue (delayed adds, retries); default the system clock. The caches'
   * resync and reconnect backoff keep the system clock.
   */
  clock?: Clock;
  /** Builds the reconcile function once the caches exist. */
  reconcilerFactory(caches: Caches): KeyHandler;
}

/** The watch-backed caches the reconciler and the servers read from. */
export interface Caches {
  stageSets: Informer<StageSet>;
  sources: Map<string, Informer<KubeObject>>;
}

/**
 * Wires caches, the work queue and leader election: StageSet and source
 * events become queue keys (`namespace/name`), and the queue's workers run
 * only while this process may reconcile.
 */
export class Manager {
  readonly caches: Caches;
  readonly #options: ManagerOptions;
  readonly #log: Logger;
  #queue: WorkQueue | undefined;
  #elector: LeaderElector | undefined;
  #electorRun: Promise<void> | undefined;
  #handler: KeyHandler | undefined;
  #stopped = false;
  readonly #missingKinds = new Set<string>();

  constructor(options: ManagerOptions) {
    this.#options = options;
    this.#log = options.log;
    // A 429 right after a CRD is installed ("storage is (re)initializing") or
    // an expired watch is routine; anything else deserves a warning.
    // A source kind whose CRD is not installed (a cluster without Buckets,
    // say) is reported once and does not hold readiness.
    const onError = (what: string) => (err: unknown) => {
      if (err instanceof KindNotFoundError) {
        if (!this.#missingKinds.has(what)) {
          this.#missingKinds.add(what);
          this.#log.info({ kind: what }, `${what} is not served by the API server; StageSets referring to one wait until its CRD is installed`);
        }
        return;
      }
      this.#missingKinds.delete(what);
      const routine = err instanceof KubeApiError && (err.status === 429 || err.status === 410);
      this.#log[routine ? "debug" : "warn"]({ err: String(err) }, `${what} watch failed; retrying`);
    };
    const stageSets = new Informer<StageSet>(options.client, {
      apiVersion: API_VERSION,
      kind: STAGESET_KIND,
      namespaces: options.watchNamespaces,
      resyncPeriodMs: options.resyncPeriodMs ?? 30 * 60_000,
      onError: onError("StageSet"),
    });
    stageSets.addIndex(INDEX_BY_SOURCE, sourceKeysOf);
    stageSets.addIndex(INDEX_BY_DEPENDENCY, dependencyKeysOf);
    const sources = new Map<string, Informer<KubeObject>>();
    for (const kind of SOURCE_KINDS) {
      sources.set(
        kind,
        new Informer<KubeObject>(options.client, {
          apiVersion: SOURCE_API_VERSION,
          kind,
          namespaces: options.watchNamespaces,
          onError: onError(kind),
        }),
      );
    }
    sources.get("ExternalArtifact")?.addIndex(INDEX_BY_PRODUCER, producerIndexKeys);
    this.caches = { stageSets, sources };
    this.#wireEvents();
  }

  /** True once every cache has listed its kind (what /readyz reports). */
  synced(): boolean {
    if (!this.caches.stageSets.hasSynced()) return false;
    for (const [kind, informer] of this.caches.sources) if (!informer.hasSynced() && !this.#missingKinds.has(kind)) return false;
    return true;
  }

  /** Seconds each reconcile under way has been running (empty while not leading). */
  inFlightSeconds(): number[] {
    return this.#queue?.inFlightSeconds() ?? [];
  }

  isLeader(): boolean {
    return this.#elector ? this.#elector.isLeader() : this.#queue !== undefined;
  }

  /** Requests a reconcile of `namespace/name` (ignored while not leading). */
  enqueue(key: string): void {
    this.#queue?.add(key);
  }

  async start(signal?: AbortSignal): Promise<void> {
    this.caches.stageSets.start();
    for (const informer of this.caches.sources.values()) informer.start();
    await this.caches.stageSets.waitForSync(signal);
    this.#handler = this.#options.reconcilerFactory(this.caches);
    const le = this.#options.leaderElection;
    if (!le) {
      this.#startQueue();
      return;
    }
    this.#elector = this.#newElector();
    this.#electorRun = this.#campaign();
  }

  #newElector(): LeaderElector {
    const le = this.#options.leaderElection!;
    const elector: LeaderElector = new LeaderElector(this.#options.client, {
      namespace: le.namespace,
      identity: le.identity,
      leaseDurationMs: le.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
      ...(le.releaseOnCancel ? { releaseOnCancel: true } : {}),
      ...(this.#options.clock ? { clock: this.#options.clock } : {}),
      onStartedLeading: () => {
        this.#log.info({ identity: elector.identity }, "became leader; reconciling");
        this.#startQueue();
      },
      onStoppedLeading: () => {
        this.#log.warn({ identity: elector.identity }, "leadership lost; reconciling stopped");
        void this.#stopQueue();
      },
      onNewLeader: (identity) => this.#log.info({ leader: identity }, "leader observed"),
      onError: (err) => this.#log.debug({ err: String(err) }, "leader election attempt failed"),
    });
    return elector;
  }

  /** Campaigns again after a lost term, as long as the manager runs. */
  async #campaign(): Promise<void> {
    while (!this.#stopped && this.#elector) {
      await this.#elector.run();
      if (this.#stopped) return;
      this.#elector = this.#newElector();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#stopQueue();
    if (this.#elector) await this.#elector.stop();
    await this.#electorRun;
    await this.caches.stageSets.stop();
    for (const informer of this.caches.sources.values()) await informer.stop();
  }

  #startQueue(): void {
    if (this.#queue || !this.#handler) return;
    const queue = new WorkQueue({
      concurrency: this.#options.concurrency,
      metrics: this.#options.queueMetrics,
      ...(this.#options.clock ? { clock: this.#options.clock } : {}),
      onError: (key, err, retryInMs) => this.#log.error({ stageset: key, err: String(err), retryInMs }, "reconcile failed"),
    });
    this.#queue = queue;
    queue.start(this.#handler);
    for (const stageSet of this.caches.stageSets.list()) queue.add(objectKey(stageSet));
  }

  async #stopQueue(): Promise<void> {
    const queue = this.#queue;
    this.#queue = undefined;
    if (queue) await queue.shutDown();
  }

  #wireEvents(): void {
    const { stageSets, sources } = this.caches;
    stageSets.addHandlers({
      onAdd: (obj) => this.enqueue(objectKey(obj)),
      onUpdate: (oldObj, newObj) => {
        if (oldObj === newObj || needsReconcile(oldObj, newObj)) this.enqueue(objectKey(newObj));
        if (readyChanged(oldObj, newObj)) this.#enqueueDependents(newObj);
      },
      onDelete: (obj) => this.#enqueueDependents(obj),
    });
    for (const informer of sources.values()) {
      informer.addHandlers({
        onAdd: (obj) => this.#enqueueReferrers(obj),
        onUpdate: (oldObj, newObj) => {
          if (oldObj !== newObj && artifactChanged(oldObj, newObj)) this.#enqueueReferrers(newObj);
        },
        onDelete: (obj) => this.#enqueueReferrers(obj),
      });
    }
  }

  #enqueueReferrers(source: KubeObject): void {
    for (const key of keysForSourceEvent(source)) {
      for (const stageSet of this.caches.stageSets.byIndex(INDEX_BY_SOURCE, key)) this.enqueue(objectKey(stageSet));
    }
  }

  #enqueueDependents(stageSet: StageSet): void {
    for (const dependent of this.caches.stageSets.byIndex(INDEX_BY_DEPENDENCY, objectKey(stageSet))) {
      this.enqueue(objectKey(dependent));
    }
  }
}

/** Spec changes, annotation changes (reconcile requests) and deletion trigger a run; our own status writes do not. */
function needsReconcile(oldObj: StageSet, newObj: StageSet): boolean {
  if (oldObj.metadata.generation !== newObj.metadata.generation) return true;
  if (oldObj.metadata.deletionTimestamp !== newObj.metadata.deletionTimestamp) return true;
  return JSON.stringify(oldObj.metadata.annotations ?? {}) !== JSON.stringify(newObj.metadata.annotations ?? {});
}

function readyChanged(oldObj: StageSet, newObj: StageSet): boolean {
  const ready = (s: StageSet) => {
    const c = s.status?.conditions?.find((x) => x.type === "Ready");
    return `${c?.status}/${c?.observedGeneration}/${s.metadata.generation}`;
  };
  return ready(oldObj) !== ready(newObj);
}

/** A new artifact or a readiness flip of a source matters; other status churn does not. */
function artifactChanged(oldObj: KubeObject, newObj: KubeObject): boolean {
  const view = (o: KubeObject) => {
    const status = o.status as { artifact?: { revision?: string; digest?: string }; conditions?: { type: string; status: string }[] } | undefined;
    const ready = status?.conditions?.find((c) => c.type === "Ready")?.status;
    return `${status?.artifact?.revision}|${status?.artifact?.digest}|${ready}|${JSON.stringify((o.spec as { sourceRef?: unknown })?.sourceRef ?? null)}`;
  };
  return view(oldObj) !== view(newObj);
}

import { hostname } from "node:os";
import type { KubeObject } from "../api/types.js";
import { systemClock, type Clock, type Timer } from "../util/clock.js";
import type { KubeClient } from "./client.js";
import { isNotFound } from "./errors.js";

export type EventType = "Normal" | "Warning";

export type EventClient = Pick<KubeClient, "create" | "patch">;

/**
 * Event metadata, for forwarders (not written to the Kubernetes Event). Plain
 * keys such as `revision`; the Flux forwarder sends them under the involved
 * object's API group (`stages.metio.wtf/revision`).
 */
export type EventMetadata = Record<string, string>;

/**
 * Receives every recorded event, each occurrence (repeats are not folded), at
 * the moment it is recorded: `FluxEventForwarder` (src/kube/flux-events.ts)
 * implements it. `forward` must return at once and never throw.
 */
export interface EventForwarder {
  forward(event: {
    involvedObject: Regarding;
    type: EventType;
    reason: string;
    message: string;
    metadata?: EventMetadata;
    /** The involved object's annotations, when the caller passed the object. */
    annotations?: Record<string, string>;
  }): void;
  /** Waits until everything forwarded so far is delivered or given up. */
  flush(): Promise<void>;
  /** Delivers what it can of the rest and stops. */
  close(): Promise<void>;
}

/** The object an event is about. */
export interface Regarding {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
}

export interface EventRecorderOptions {
  /** Default `stageset-controller`. */
  reportingController?: string;
  /** Default the host name (the pod name in a cluster). */
  reportingInstance?: string;
  /**
   * Repeats of one event (same object, type, reason and message) inside this
   * window are counted in memory and written as one count update at its end.
   * Default 10s.
   */
  aggregationWindowMs?: number;
  /** Distinct events remembered for aggregation; default 4096 (oldest forgotten first). */
  maxTracked?: number;
  onError?(err: unknown): void;
  /** Times the aggregation window and stamps the Events; default the system clock. */
  clock?: Clock;
  /**
   * Also hands every event to this forwarder (Flux's notification-controller,
   * `--events-addr`). The recorder's `flush` and `close` flush and close it.
   */
  forwarder?: EventForwarder;
}

/** Longest message written; the API (events.k8s.io) rejects longer notes. */
export const MAX_EVENT_MESSAGE = 1024;

interface Tracked {
  ref: Regarding;
  type: EventType;
  reason: string;
  note: string;
  name: string;
  namespace: string;
  count: number;
  /** Occurrences not yet written. */
  unwritten: number;
  lastWriteAt: number;
  /** When the event first happened (the Event's firstTimestamp). */
  firstSeen: string;
  lastSeen: string;
  timer: Timer | undefined;
}

/**
 * Writes core/v1 Events (what `kubectl describe` shows). A repeated event
 * updates the count of the first Event object instead of creating a new one,
 * and a storm of repeats costs at most one write per aggregation window.
 * Writing never blocks the caller; failures go to `onError`.
 */
export class EventRecorder {
  readonly #client: EventClient;
  readonly #controller: string;
  readonly #instance: string;
  readonly #windowMs: number;
  readonly #maxTracked: number;
  readonly #onError: ((err: unknown) => void) | undefined;
  readonly #clock: Clock;
  readonly #forwarder: EventForwarder | undefined;
  readonly #tracked = new Map<string, Tracked>();
  readonly #inFlight = new Set<Promise<void>>();
  /** Writes are serialised per event so a count update never overtakes the create. */
  readonly #chains = new Map<string, Promise<void>>();
  #sequence = 0;
  #closed = false;

  constructor(client: EventClient, options: EventRecorderOptions = {}) {
    this.#client = client;
    this.#controller = options.reportingController ?? "stageset-controller";
    this.#instance = options.reportingInstance ?? hostname();
    this.#windowMs = options.aggregationWindowMs ?? 10_000;
    this.#maxTracked = options.maxTracked ?? 4096;
    this.#onError = options.onError;
    this.#clock = options.clock ?? systemClock;
    this.#forwarder = options.forwarder;
  }

  /** Records a Normal event (see `record`). */
  normal(regarding: KubeObject | Regarding, reason: string, message: string, metadata?: EventMetadata): void {
    this.record(regarding, "Normal", reason, message, metadata);
  }

  /** Records a Warning event (see `record`). */
  warning(regarding: KubeObject | Regarding, reason: string, message: string, metadata?: EventMetadata): void {
    this.record(regarding, "Warning", reason, message, metadata);
  }

  /**
   * Records an event about `regarding`; returns at once (the write happens in
   * the background, failures go to `onError`). `message` must not carry
   * secret data; it is cut to {@link MAX_EVENT_MESSAGE} characters in the
   * Kubernetes Event. `metadata` (for example `{ revision }`) goes only to the
   * forwarder, with the full message.
   */
  record(regarding: KubeObject | Regarding, type: EventType, reason: string, message: string, metadata?: EventMetadata): void {
    if (this.#closed) return;
    const ref = toRegarding(regarding);
    if (this.#forwarder) {
      const annotations = "metadata" in regarding && regarding.metadata && typeof regarding.metadata === "object" ? (regarding as KubeObject).metadata.annotations : undefined;
      try {
        this.#forwarder.forward({ involvedObject: ref, type, reason, message, ...(metadata ? { metadata } : {}), ...(annotations ? { annotations } : {}) });
      } catch (err) {
        this.#onError?.(err);
      }
    }
    const note = truncate(message, MAX_EVENT_MESSAGE);
    const key = [ref.apiVersion, ref.kind, ref.namespace ?? "", ref.name, ref.uid ?? "", type, reason, note].join("\u0000");
    const now = this.#clock.now();
    const tracked = this.#tracked.get(key);
    if (!tracked) {
      const entry: Tracked = {
        ref,
        type,
        reason,
        note,
        name: `${ref.name}.${(BigInt(now) * 1_000_000n + BigInt(this.#sequence++ % 1_000_000)).toString(16)}`,
        namespace: ref.namespace || "default",
        count: 1,
        unwritten: 0,
        lastWriteAt: now,
        firstSeen: new Date(now).toISOString(),
        lastSeen: new Date(now).toISOString(),
        timer: undefined,
      };
      this.#remember(key, entry);
      this.#enqueue(key, () => this.#create(entry));
      return;
    }
    this.#tracked.delete(key); // re-insert: most recently used last
    this.#tracked.set(key, tracked);
    tracked.count++;
    tracked.unwritten++;
    tracked.lastSeen = new Date(now).toISOString();
    if (tracked.timer) return;
    const wait = tracked.lastWriteAt + this.#windowMs - now;
    if (wait <= 0) {
      this.#writeCount(key, tracked);
      return;
    }
    tracked.timer = this.#clock.setTimer(
      wait,
      () => {
        tracked.timer = undefined;
        this.#writeCount(key, tracked);
      },
      { keepAlive: false },
    );
  }

  /** Writes every pending count update now and waits for all writes (and for the forwarder to deliver or give up). */
  async flush(): Promise<void> {
    await this.#flushKube();
    await this.#forwarder?.flush();
  }

  /** Flushes, then ignores further events (and closes the forwarder: its last tries are made then). */
  async close(): Promise<void> {
    await this.#flushKube();
    this.#closed = true;
    await this.#forwarder?.close();
  }

  async #flushKube(): Promise<void> {
    for (const tracked of this.#tracked.values()) {
      if (!tracked.timer) continue;
      tracked.timer.cancel();
      tracked.timer = undefined;
      tracked.lastWriteAt = 0;
    }
    for (const [key, tracked] of this.#tracked) {
      if (tracked.unwritten > 0) this.#writeCount(key, tracked);
    }
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  #writeCount(key: string, tracked: Tracked): void {
    tracked.lastWriteAt = this.#clock.now();
    this.#enqueue(key, async () => {
      if (tracked.unwritten === 0) return;
      try {
        await this.#patchCount(tracked);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        // The Event expired (the API server keeps them about an hour): start a new one.
        await this.#create(tracked);
      }
    });
  }

  async #create(tracked: Tracked): Promise<void> {
    const { ref, type, reason, note } = tracked;
    const written = tracked.count;
    await this.#client.create({
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: tracked.name, namespace: tracked.namespace },
      involvedObject: {
        apiVersion: ref.apiVersion,
        kind: ref.kind,
        name: ref.name,
        namespace: ref.namespace,
        uid: ref.uid,
        resourceVersion: ref.resourceVersion,
      },
      type,
      reason,
      message: note,
      count: written,
      firstTimestamp: tracked.firstSeen,
      lastTimestamp: tracked.lastSeen,
      source: { component: this.#controller },
      reportingComponent: this.#controller,
      reportingInstance: this.#instance,
    });
    tracked.unwritten = Math.max(0, tracked.count - written);
  }

  async #patchCount(tracked: Tracked): Promise<void> {
    const written = tracked.count;
    await this.#client.patch(
      { apiVersion: "v1", kind: "Event", namespace: tracked.namespace, name: tracked.name },
      { count: written, lastTimestamp: tracked.lastSeen },
      "merge",
    );
    tracked.unwritten = Math.max(0, tracked.count - written);
  }

  #enqueue(key: string, write: () => Promise<void>): void {
    const previous = this.#chains.get(key) ?? Promise.resolve();
    const next = previous.then(write).catch((err: unknown) => this.#onError?.(err));
    this.#chains.set(key, next);
    this.#inFlight.add(next);
    void next.finally(() => {
      this.#inFlight.delete(next);
      if (this.#chains.get(key) === next) this.#chains.delete(key);
    });
  }

  #remember(key: string, entry: Tracked): void {
    this.#tracked.set(key, entry);
    if (this.#tracked.size <= this.#maxTracked) return;
    const oldest = this.#tracked.keys().next().value as string;
    const evicted = this.#tracked.get(oldest);
    evicted?.timer?.cancel();
    this.#tracked.delete(oldest);
  }
}

function toRegarding(obj: KubeObject | Regarding): Regarding {
  if ("metadata" in obj && obj.metadata && typeof obj.metadata === "object") {
    const meta = (obj as KubeObject).metadata;
    return {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      name: meta.name ?? "",
      namespace: meta.namespace,
      uid: meta.uid,
      resourceVersion: meta.resourceVersion,
    };
  }
  return obj as Regarding;
}

function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max - 1)}…`;
}

/**
 * Forwards the controller's events to Flux's notification-controller, in the
 * event format every Flux controller posts (`event.toolkit.fluxcd.io`
 * `Event`, JSON), so Alerts and Providers can route them. Enabled by
 * `--events-addr` (the flag Flux controllers use); what an operator can route
 * from a StageSet is in docs/flux-events.md.
 *
 * Delivery never blocks the caller: `forward` puts the event on a bounded
 * queue (the oldest is dropped when it is full, and drops are counted and
 * logged) and one background loop posts events in order, retrying network
 * errors, time-outs and 5xx answers with exponential backoff. A 4xx answer is
 * final (429 is notification-controller saying "a duplicate of an event it
 * saw within its rate-limit interval", which Flux's recorder does not retry
 * either). Every wait runs on the injected Clock.
 */
import { hostname } from "node:os";
import { pause, systemClock, type Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";

/** The API group of Flux's event API: metadata keys under it are routed whatever the involved object. */
export const FLUX_EVENT_GROUP = "event.toolkit.fluxcd.io";

/** An event as notification-controller decodes it (Flux's `eventv1.Event`). */
export interface FluxEvent {
  involvedObject: FluxObjectReference;
  /** `info` for Normal events, `error` for Warning events (Flux's mapping). */
  severity: "info" | "error";
  /** RFC 3339, seconds precision, UTC (how Go encodes a `metav1.Time`). */
  timestamp: string;
  message: string;
  reason: string;
  /** Keys prefixed with the involved object's API group or `event.toolkit.fluxcd.io/`; others are dropped by notification-controller. */
  metadata?: Record<string, string>;
  reportingController: string;
  reportingInstance?: string;
}

/** A core/v1 ObjectReference, as Flux sends it. */
export interface FluxObjectReference {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
}

/** What the EventRecorder hands over for each event. */
export interface ForwardInput {
  involvedObject: FluxObjectReference;
  type: "Normal" | "Warning";
  reason: string;
  message: string;
  /**
   * Event metadata. A key without a `/` (`revision`) is sent under the
   * involved object's API group (`stages.metio.wtf/revision`), as Flux's
   * controllers do, so notification-controller passes it on to providers
   * without the prefix; a key with a `/` is sent as it is.
   */
  metadata?: Record<string, string>;
  /**
   * The involved object's annotations: those under `event.toolkit.fluxcd.io/`
   * are added to the metadata, as Flux's recorder does (RFC 0008).
   */
  annotations?: Record<string, string>;
}

export interface FluxEventForwarderOptions {
  /** Where to POST, for example `http://notification-controller.flux-system.svc.cluster.local./`. */
  address: string;
  /** Default `stageset-controller`. */
  reportingController?: string;
  /** Default the host name (the pod name in a cluster). */
  reportingInstance?: string;
  /** Events waiting to be posted; when full the oldest is dropped. Default 1000. */
  maxQueue?: number;
  /** Tries per event (1 = no retry). Default 5, as Flux's recorder (one try and four retries). */
  maxAttempts?: number;
  /** First backoff; doubled each retry up to `maxBackoffMs`. Default 1s. */
  minBackoffMs?: number;
  /** Default 30s. */
  maxBackoffMs?: number;
  /** One POST, answer included. Default 5s, as Flux's recorder. */
  requestTimeoutMs?: number;
  /** At most one "dropped" log line per this interval. Default 60s. */
  dropLogIntervalMs?: number;
  /** Messages longer than this are cut (notification-controller refuses bodies over 3 MiB). Default 16 KiB. */
  maxMessageLength?: number;
  clock?: Clock;
  log?: Logger;
}

/** Counters since start, for logs, metrics and tests. */
export interface FluxEventStats {
  /** Answered 2xx. */
  delivered: number;
  /** Answered 429: notification-controller's duplicate-within-interval answer. */
  duplicates: number;
  /** Given up: a 4xx answer, the last try failed, or shut down before delivery. */
  failed: number;
  /** Pushed out of a full queue. */
  dropped: number;
  /** Tries that are retried. */
  retries: number;
}

interface Queued {
  event: FluxEvent;
  attempts: number;
}

type Outcome = "delivered" | "duplicate" | "retry" | "fail";

/** Cuts `text` to `max` characters, marking the cut. */
function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The API group of an apiVersion (`stages.metio.wtf/v1` → `stages.metio.wtf`; `v1` → ``). */
export function apiGroup(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? "" : apiVersion.slice(0, slash);
}

/** RFC 3339 in UTC to the second, the encoding of Go's metav1.Time. */
function rfc3339Seconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * Builds the Flux event for one recorded event: severity from the type,
 * metadata keys prefixed with the involved object's group, the object's
 * `event.toolkit.fluxcd.io/` annotations added.
 */
export function toFluxEvent(
  input: ForwardInput,
  context: { reportingController: string; reportingInstance: string; now: number; maxMessageLength?: number },
): FluxEvent {
  const group = apiGroup(input.involvedObject.apiVersion);
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(input.annotations ?? {})) {
    if (key.startsWith(`${FLUX_EVENT_GROUP}/`)) metadata[key] = value;
  }
  for (const [key, value] of Object.entries(input.metadata ?? {})) {
    if (value === undefined) continue;
    metadata[key.includes("/") || group === "" ? key : `${group}/${key}`] = value;
  }
  const ref = input.involvedObject;
  const event: FluxEvent = {
    involvedObject: {
      apiVersion: ref.apiVersion,
      kind: ref.kind,
      name: ref.name,
      ...(ref.namespace ? { namespace: ref.namespace } : {}),
      ...(ref.uid ? { uid: ref.uid } : {}),
      ...(ref.resourceVersion ? { resourceVersion: ref.resourceVersion } : {}),
    },
    severity: input.type === "Warning" ? "error" : "info",
    timestamp: rfc3339Seconds(context.now),
    message: truncate(input.message, context.maxMessageLength ?? 16 * 1024),
    reason: input.reason,
    reportingController: context.reportingController,
    reportingInstance: context.reportingInstance,
  };
  if (Object.keys(metadata).length > 0) event.metadata = metadata;
  return event;
}

/**
 * Posts Flux events to notification-controller from a bounded queue, in the
 * background. `forward` never blocks or throws; `flush` waits until the queue
 * is empty; `close` stops taking events and makes one last try (no backoff)
 * for each one still queued.
 */
export class FluxEventForwarder {
  readonly address: string;
  readonly #controller: string;
  readonly #instance: string;
  readonly #maxQueue: number;
  readonly #maxAttempts: number;
  readonly #minBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #requestTimeoutMs: number;
  readonly #dropLogIntervalMs: number;
  readonly #maxMessageLength: number;
  readonly #clock: Clock;
  readonly #log: Logger | undefined;
  readonly #queue: Queued[] = [];
  readonly #stats: FluxEventStats = { delivered: 0, duplicates: 0, failed: 0, dropped: 0, retries: 0 };
  #running: Promise<void> | undefined;
  #closing = false;
  #closed = false;
  /** Cancels the backoff the loop is waiting in, when closing. */
  #wakeBackoff: (() => void) | undefined;
  #droppedSinceLog = 0;
  #lastDropLogAt = -Infinity;

  constructor(options: FluxEventForwarderOptions) {
    const url = new URL(options.address); // throws on a malformed address: caught at start-up, not per event
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(`events address must be an http(s) URL, got "${options.address}"`);
    }
    this.address = options.address;
    this.#controller = options.reportingController ?? "stageset-controller";
    this.#instance = options.reportingInstance ?? hostname();
    this.#maxQueue = Math.max(1, options.maxQueue ?? 1000);
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.#minBackoffMs = options.minBackoffMs ?? 1_000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    this.#dropLogIntervalMs = options.dropLogIntervalMs ?? 60_000;
    this.#maxMessageLength = options.maxMessageLength ?? 16 * 1024;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log;
  }

  /** A copy of the counters. */
  stats(): FluxEventStats {
    return { ...this.#stats };
  }

  /** Events waiting (not counting the one being posted). */
  get queued(): number {
    return this.#queue.length;
  }

  /** Queues the event for posting; returns at once. Ignored after `close`. */
  forward(input: ForwardInput): void {
    if (this.#closing || this.#closed) return;
    const event = toFluxEvent(input, {
      reportingController: this.#controller,
      reportingInstance: this.#instance,
      now: this.#clock.now(),
      maxMessageLength: this.#maxMessageLength,
    });
    this.#enqueue(event);
  }

  /** Queues an event already in Flux's format (for callers that build their own). */
  enqueue(event: FluxEvent): void {
    if (this.#closing || this.#closed) return;
    this.#enqueue(event);
  }

  /** Resolves once every queued event is delivered or given up (backoffs included). */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /**
   * Stops taking events, cuts short any backoff and makes one last try for
   * each queued event (at most `requestTimeoutMs` each), then resolves.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closing = true;
    this.#wakeBackoff?.();
    await this.flush();
    this.#closed = true;
    this.#logDrops(true);
  }

  #enqueue(event: FluxEvent): void {
    this.#queue.push({ event, attempts: 0 });
    while (this.#queue.length > this.#maxQueue) {
      this.#queue.shift();
      this.#stats.dropped++;
      this.#droppedSinceLog++;
    }
    this.#logDrops(false);
    this.#running ??= this.#drain().finally(() => {
      this.#running = undefined;
    });
  }

  #logDrops(force: boolean): void {
    if (this.#droppedSinceLog === 0) return;
    const now = this.#clock.monotonic();
    if (!force && now - this.#lastDropLogAt < this.#dropLogIntervalMs) return;
    this.#log?.warn(
      { dropped: this.#droppedSinceLog, droppedTotal: this.#stats.dropped, maxQueue: this.#maxQueue, address: this.address },
      "Flux events dropped: the queue to notification-controller is full",
    );
    this.#lastDropLogAt = now;
    this.#droppedSinceLog = 0;
  }

  async #drain(): Promise<void> {
    // Yield once so a burst of forward() calls from one reconcile is queued (and bounded) before the first post.
    await Promise.resolve();
    for (;;) {
      const item = this.#queue.shift();
      if (!item) return;
      for (;;) {
        item.attempts++;
        const outcome = await this.#post(item);
        if (outcome === "delivered") {
          this.#stats.delivered++;
          break;
        }
        if (outcome === "duplicate") {
          this.#stats.duplicates++;
          break;
        }
        if (outcome === "fail" || item.attempts >= this.#maxAttempts || this.#closing) {
          this.#stats.failed++;
          break;
        }
        this.#stats.retries++;
        // close() ends this wait early; the try after it is then the last one.
        await this.#backoff(item.attempts);
      }
      this.#logDrops(false);
    }
  }

  /** Sleeps min·2^(n-1), capped; close() ends the sleep early. */
  async #backoff(attempts: number): Promise<void> {
    if (this.#closing) return;
    const wait = Math.min(this.#maxBackoffMs, this.#minBackoffMs * 2 ** (attempts - 1));
    const wake = new AbortController();
    this.#wakeBackoff = () => wake.abort();
    try {
      await pause(this.#clock, wait, wake.signal);
    } finally {
      this.#wakeBackoff = undefined;
    }
  }

  async #post(item: Queued): Promise<Outcome> {
    const { event } = item;
    const controller = new AbortController();
    const timer = this.#clock.setTimer(this.#requestTimeoutMs, () => controller.abort(new Error(`no answer within ${this.#requestTimeoutMs}ms`)), {
      keepAlive: false,
    });
    const where = {
      address: this.address,
      object: `${event.involvedObject.kind}/${event.involvedObject.namespace ?? ""}/${event.involvedObject.name}`,
      reason: event.reason,
      attempt: item.attempts,
    };
    try {
      const response = await fetch(this.address, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(event),
        signal: controller.signal,
      });
      // The body is not read into logs (it may echo the event); drain it so the connection is reused.
      await response.arrayBuffer().catch(() => undefined);
      const status = response.status;
      if (status >= 200 && status < 300) {
        this.#log?.trace({ ...where, status }, "Flux event delivered");
        return "delivered";
      }
      if (status === 429) {
        this.#log?.debug({ ...where, status }, "Flux event not dispatched: notification-controller saw the same event within its rate-limit interval");
        return "duplicate";
      }
      if (status >= 500 && status !== 501) {
        const last = item.attempts >= this.#maxAttempts || this.#closing;
        this.#log?.[last ? "warn" : "debug"]({ ...where, status }, last ? "Flux event not delivered: giving up" : "Flux event not delivered: will retry");
        return "retry";
      }
      this.#log?.warn({ ...where, status }, "Flux event refused by notification-controller");
      return "fail";
    } catch (err) {
      const last = item.attempts >= this.#maxAttempts || this.#closing;
      const cause = controller.signal.aborted ? String(controller.signal.reason) : describeNetworkError(err);
      this.#log?.[last ? "warn" : "debug"]({ ...where, err: cause }, last ? "Flux event not delivered: giving up" : "Flux event not delivered: will retry");
      return "retry";
    } finally {
      timer.cancel();
    }
  }
}

/** fetch's "fetch failed" with the useful part (ECONNREFUSED, ENOTFOUND …) from its cause. */
function describeNetworkError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as Error & { code?: string }).code;
      return code ? `${err.message}: ${code}` : `${err.message}: ${cause.message}`;
    }
    return err.message;
  }
  return String(err);
}

import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { KubeObject } from "../api/types.js";
import { pause, systemClock, type Clock } from "../util/clock.js";
import { withJitter } from "./backoff.js";
import type { KubeClient } from "./client.js";
import { isAlreadyExists, isConflict } from "./errors.js";

/** The lease name the documentation fixes. */
export const LEASE_NAME = "stageset-controller.stages.metio.wtf";

interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export type LeaseClient = Pick<KubeClient, "get" | "create" | "update">;

export interface LeaderElectionOptions {
  /** The namespace the controller runs in. */
  namespace: string;
  name?: string;
  /** Unique per process; default `<hostname>_<uuid>` like controller-runtime. */
  identity?: string;
  /** How long others wait after the last renewal they saw before taking over; default 15s. */
  leaseDurationMs?: number;
  /** A leader that could not renew for this long stops leading; default 10s. */
  renewDeadlineMs?: number;
  /** Pause between acquire/renew attempts; default 2s. */
  retryPeriodMs?: number;
  /**
   * Hand the lease back when stopped (so a successor takes over at once).
   * Off by default, as documented: after a restart the new leader waits for
   * the old lease to expire.
   */
  releaseOnCancel?: boolean;
  /** Start reconciling; `signal` aborts when leadership ends. */
  onStartedLeading(signal: AbortSignal): void;
  /** Stop reconciling now. Called once when leadership ends, whether lost or given up by `stop`. */
  onStoppedLeading(): void;
  /** Another (or this) process became the holder. */
  onNewLeader?(identity: string): void;
  /** A failed acquire/renew attempt (it is retried). */
  onError?(err: unknown): void;
  /**
   * Times the retry pauses, the renew deadline and lease expiry (monotonic
   * time) and stamps acquire/renew times (wall time); default the system clock.
   */
  clock?: Clock;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease with client-go's rules:
 * a lease is free when its holder is empty or its record has not changed for
 * `leaseDurationSeconds` of *our* clock (no trust in others' clocks); every
 * write carries the resourceVersion it read, so two candidates never both win.
 */
export class LeaderElector {
  readonly identity: string;
  readonly #client: LeaseClient;
  readonly #namespace: string;
  readonly #name: string;
  readonly #leaseDurationMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  readonly #options: LeaderElectionOptions;
  readonly #clock: Clock;
  readonly #stop = new AbortController();
  /** The last lease we read or wrote (its resourceVersion makes our next write conditional). */
  #lease: Lease | undefined;
  #observedRecord = "";
  #observedAt = 0;
  #observedHolder = "";
  #observedDurationMs = 0;
  #leading = false;
  #lastHolder: string | undefined;
  #running: Promise<void> | undefined;

  constructor(client: LeaseClient, options: LeaderElectionOptions) {
    this.#client = client;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#namespace = options.namespace;
    this.#name = options.name ?? LEASE_NAME;
    this.identity = options.identity ?? `${hostname()}_${randomUUID()}`;
    this.#leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.#renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.#retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (!(this.#leaseDurationMs > this.#renewDeadlineMs && this.#renewDeadlineMs > this.#retryPeriodMs)) {
      throw new RangeError("leader election needs leaseDuration > renewDeadline > retryPeriod");
    }
  }

  /** Whether this process holds the lease now (between onStartedLeading and onStoppedLeading). */
  isLeader(): boolean {
    return this.#leading;
  }

  /**
   * Campaigns until elected, then renews until leadership is lost or `stop`
   * is called. Resolves when it is over; a process that lost the lease should
   * exit (controller-runtime does) rather than campaign again with stale state.
   */
  run(): Promise<void> {
    this.#running ??= this.#run();
    return this.#running;
  }

  /** Stops campaigning or leading; releases the lease only with `releaseOnCancel`. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#running;
  }

  async #run(): Promise<void> {
    const stopped = this.#stop.signal;
    while (!stopped.aborted) {
      if (await this.#attempt(this.#retryPeriodMs)) break;
      await pause(this.#clock, withJitter(this.#retryPeriodMs * 1.2), stopped);
    }
    if (stopped.aborted) return;

    const leadership = new AbortController();
    this.#leading = true;
    this.#options.onStartedLeading(leadership.signal);
    let lastRenewal = this.#clock.monotonic();
    while (!stopped.aborted) {
      await pause(this.#clock, this.#retryPeriodMs, stopped);
      if (stopped.aborted) break;
      const deadline = lastRenewal + this.#renewDeadlineMs;
      let renewed = false;
      while (!renewed && !stopped.aborted && this.#clock.monotonic() < deadline) {
        renewed = await this.#attempt(Math.max(1, deadline - this.#clock.monotonic()));
        if (!renewed && this.#heldByOther()) break;
        if (!renewed) await pause(this.#clock, Math.min(this.#retryPeriodMs, Math.max(0, deadline - this.#clock.monotonic())), stopped);
      }
      if (!renewed && !stopped.aborted) break;
      lastRenewal = this.#clock.monotonic();
    }

    this.#leading = false;
    leadership.abort(new Error("leader election lost"));
    this.#options.onStoppedLeading();
    if (stopped.aborted && this.#options.releaseOnCancel) await this.#release();
  }

  /** One acquire-or-renew round; true when we hold the lease afterwards. */
  async #attempt(timeoutMs: number): Promise<boolean> {
    try {
      return await this.#tryAcquireOrRenew(timeoutMs);
    } catch (err) {
      if (!isConflict(err) && !isAlreadyExists(err)) this.#options.onError?.(err);
      this.#lease = undefined; // re-read before the next write
      return false;
    }
  }

  async #tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const ref = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace: this.#namespace, name: this.#name };
    // While we lead, write straight over our own last version; a Conflict sends us back to reading.
    const current = this.#leading && this.#lease ? this.#lease : await this.#client.get<Lease>(ref, { timeoutMs });
    const now = microTime(new Date(this.#clock.now()));
    if (!current) {
      this.#lease = await this.#client.create<Lease>(
        {
          ...ref,
          metadata: { name: this.#name, namespace: this.#namespace },
          spec: {
            holderIdentity: this.identity,
            leaseDurationSeconds: Math.ceil(this.#leaseDurationMs / 1000),
            acquireTime: now,
            renewTime: now,
            leaseTransitions: 0,
          },
        },
        { timeoutMs },
      );
      this.#observe(this.#lease);
      return true;
    }
    this.#observe(current);
    const spec = current.spec ?? {};
    if (spec.holderIdentity !== this.identity && this.#heldByOther()) return false;
    const takingOver = spec.holderIdentity !== this.identity;
    this.#lease = await this.#client.update<Lease>(
      {
        ...current,
        spec: {
          ...spec,
          holderIdentity: this.identity,
          leaseDurationSeconds: Math.ceil(this.#leaseDurationMs / 1000),
          acquireTime: takingOver ? now : spec.acquireTime,
          renewTime: now,
          leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver && spec.holderIdentity ? 1 : 0),
        },
      },
      { timeoutMs },
    );
    this.#observe(this.#lease);
    return true;
  }

  /** Remembers when (by our clock) the lease record last changed. */
  #observe(lease: Lease): void {
    const spec = lease.spec ?? {};
    const record = `${spec.holderIdentity ?? ""}|${spec.renewTime ?? ""}|${spec.leaseDurationSeconds ?? ""}`;
    if (record !== this.#observedRecord) {
      this.#observedRecord = record;
      this.#observedAt = this.#clock.monotonic();
    }
    this.#observedHolder = spec.holderIdentity ?? "";
    this.#observedDurationMs = (spec.leaseDurationSeconds ?? this.#leaseDurationMs / 1000) * 1000;
    if (this.#observedHolder && this.#observedHolder !== this.#lastHolder) {
      this.#lastHolder = this.#observedHolder;
      this.#options.onNewLeader?.(this.#observedHolder);
    }
  }

  /** Someone else holds a lease that, by what we observed, has not expired. */
  #heldByOther(): boolean {
    if (!this.#observedHolder || this.#observedHolder === this.identity) return false;
    return this.#clock.monotonic() < this.#observedAt + this.#observedDurationMs;
  }

  async #release(): Promise<void> {
    if (!this.#lease) return;
    const now = microTime(new Date(this.#clock.now()));
    try {
      await this.#client.update<Lease>(
        {
          ...this.#lease,
          spec: {
            ...this.#lease.spec,
            holderIdentity: "",
            leaseDurationSeconds: 1,
            acquireTime: now,
            renewTime: now,
          },
        },
        { timeoutMs: this.#retryPeriodMs },
      );
    } catch (err) {
      this.#options.onError?.(err);
    }
  }
}

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

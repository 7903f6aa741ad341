// The Flux event forwarder against a loopback HTTP server the test runs:
// the JSON notification-controller decodes, the severity mapping, retries
// (5xx, network errors, time-outs) with backoff on a FakeClock, no retry on a
// 4xx, the bounded queue, close() delivering what is queued — and the
// EventRecorder handing every event to it.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { after, before, beforeEach, describe, test } from "node:test";
import type { KubeObject } from "../../../src/api/types.js";
import { FlagError, parseControllerFlags } from "../../../src/config/flags.js";
import { EventRecorder, type EventClient, type EventForwarder } from "../../../src/kube/events.js";
import { FluxEventForwarder, toFluxEvent, type FluxEvent } from "../../../src/kube/flux-events.js";
import { createLogger } from "../../../src/util/log.js";
import { FakeClock } from "../../support/fake-clock.js";

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  event: FluxEvent;
}

/** Answers each POST with the next status of `script` (then 202); `hold` keeps answers back until released. */
class EventSink {
  server!: Server;
  received: Received[] = [];
  script: number[] = [];
  held: (() => void)[] = [];
  hold = false;
  #waiters: { count: number; resolve: () => void }[] = [];

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.#handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
  }

  reset(): void {
    this.received = [];
    this.script = [];
    this.hold = false;
    for (const release of this.held.splice(0)) release();
  }

  /** Resolves once `count` requests have arrived (real I/O, no clock involved). */
  whenReceived(count: number): Promise<void> {
    if (this.received.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }

  release(): void {
    for (const answer of this.held.splice(0)) answer();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      this.received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, event: JSON.parse(Buffer.concat(chunks).toString("utf8")) as FluxEvent });
      const status = this.script.shift() ?? 202;
      const answer = () => {
        if (!res.writableEnded) res.writeHead(status).end(status >= 400 ? "nope: echo of the body would go here" : "");
      };
      if (this.hold) this.held.push(answer);
      else answer();
      for (const w of this.#waiters.filter((w) => this.received.length >= w.count)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve();
      }
    });
  }
}

const stageSet: KubeObject = {
  apiVersion: "stages.metio.wtf/v1",
  kind: "StageSet",
  metadata: {
    name: "shop",
    namespace: "team-a",
    uid: "0b5c9c9e-7f4e-4c2a-9d53-3a1f0e0c1d2e",
    resourceVersion: "4711",
    annotations: { "event.toolkit.fluxcd.io/cluster": "prod-eu", "example.com/other": "not forwarded" },
  },
};
const ref = { apiVersion: "stages.metio.wtf/v1", kind: "StageSet", name: "shop", namespace: "team-a", uid: "0b5c9c9e-7f4e-4c2a-9d53-3a1f0e0c1d2e", resourceVersion: "4711" };

function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, log: createLogger({ level: "trace", encoding: "json", destination }) };
}

const sink = new EventSink();
before(() => sink.start());
after(() => new Promise<void>((resolve) => sink.server.close(() => resolve())));
beforeEach(() => sink.reset());

describe("toFluxEvent", () => {
  test("Flux's event format: the StageSet as involved object, severity from the type, metadata under the object's group", () => {
    const event = toFluxEvent(
      {
        involvedObject: ref,
        type: "Normal",
        reason: "Succeeded",
        message: "all stages Ready",
        metadata: { revision: "main@sha1:0a1b2c", "event.toolkit.fluxcd.io/team": "shop" },
        annotations: stageSet.metadata.annotations!,
      },
      { reportingController: "stageset-controller", reportingInstance: "pod-1", now: Date.UTC(2024, 0, 1, 12, 0, 0, 999) },
    );
    assert.deepEqual(event, {
      involvedObject: ref,
      severity: "info",
      timestamp: "2024-01-01T12:00:00Z",
      message: "all stages Ready",
      reason: "Succeeded",
      metadata: {
        "stages.metio.wtf/revision": "main@sha1:0a1b2c",
        "event.toolkit.fluxcd.io/team": "shop",
        "event.toolkit.fluxcd.io/cluster": "prod-eu",
      },
      reportingController: "stageset-controller",
      reportingInstance: "pod-1",
    });
    const warning = toFluxEvent({ involvedObject: ref, type: "Warning", reason: "StageFailed", message: "x".repeat(20) }, { reportingController: "c", reportingInstance: "i", now: 0, maxMessageLength: 10 });
    assert.equal(warning.severity, "error");
    assert.equal(warning.metadata, undefined, "no metadata key when there is none");
    assert.equal(warning.message, `${"x".repeat(9)}…`);
  });
});

describe("FluxEventForwarder", () => {
  test("POSTs the JSON event to the address and never blocks the caller", async () => {
    const clock = new FakeClock({ start: Date.UTC(2024, 0, 1) });
    const forwarder = new FluxEventForwarder({ address: sink.url, reportingInstance: "pod-1", clock });
    sink.hold = true;
    forwarder.forward({ involvedObject: ref, type: "Warning", reason: "StageFailed", message: 'stage "app" failed', metadata: { revision: "v1" } });
    await sink.whenReceived(1);
    const { method, url, headers, event } = sink.received[0]!;
    assert.equal(method, "POST");
    assert.equal(url, "/");
    assert.equal(headers["content-type"], "application/json");
    assert.deepEqual(event, {
      involvedObject: ref,
      severity: "error",
      timestamp: "2024-01-01T00:00:00Z",
      message: 'stage "app" failed',
      reason: "StageFailed",
      metadata: { "stages.metio.wtf/revision": "v1" },
      reportingController: "stageset-controller",
      reportingInstance: "pod-1",
    });
    sink.release();
    await forwarder.flush();
    assert.deepEqual(forwarder.stats(), { delivered: 1, duplicates: 0, failed: 0, dropped: 0, retries: 0 });
  });

  test("retries 5xx answers with exponential backoff on the clock, then delivers", async () => {
    const clock = new FakeClock();
    const forwarder = new FluxEventForwarder({ address: sink.url, clock });
    sink.script = [500, 503, 502];
    forwarder.forward({ involvedObject: ref, type: "Normal", reason: "Succeeded", message: "ok" });
    for (let tries = 1; tries <= 3; tries++) {
      await sink.whenReceived(tries);
      await clock.whenSleeping(1);
      assert.equal(sink.received.length, tries, "no new try before the backoff ends");
      await clock.advance(clock.sleeps.at(-1)!);
    }
    await forwarder.flush();
    assert.equal(sink.received.length, 4);
    assert.deepEqual(clock.sleeps, [1_000, 2_000, 4_000]);
    assert.deepEqual(forwarder.stats(), { delivered: 1, duplicates: 0, failed: 0, dropped: 0, retries: 3 });
  });

  test("gives up after maxAttempts, with one warning that carries neither message nor body", async () => {
    const clock = new FakeClock();
    const { lines, log } = captureLog();
    const forwarder = new FluxEventForwarder({ address: sink.url, clock, log, maxAttempts: 3, maxBackoffMs: 1_500 });
    sink.script = [500, 500, 500];
    forwarder.forward({ involvedObject: ref, type: "Normal", reason: "Succeeded", message: "secret-looking message" });
    const done = forwarder.flush();
    await clock.run(60_000, () => (forwarder.stats().failed === 0 ? 1 : 0));
    await done;
    assert.equal(sink.received.length, 3);
    assert.deepEqual(clock.sleeps, [1_000, 1_500], "doubling, capped at maxBackoffMs");
    assert.deepEqual(forwarder.stats(), { delivered: 0, duplicates: 0, failed: 1, dropped: 0, retries: 2 });
    const warnings = lines.filter((l) => l.level === "warn");
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.msg, "Flux event not delivered: giving up");
    assert.equal(warnings[0]!.status, 500);
    assert.equal(warnings[0]!.object, "StageSet/team-a/shop");
    const all = JSON.stringify(lines);
    assert.ok(!all.includes("secret-looking") && !all.includes("nope"), "no event message or response body in any log line");
  });

  test("a 4xx answer is final; a 429 (notification-controller's duplicate answer) too, counted apart", async () => {
    const clock = new FakeClock();
    const forwarder = new FluxEventForwarder({ address: sink.url, clock });
    sink.script = [400, 429];
    forwarder.forward({ involvedObject: ref, type: "Normal", reason: "A", message: "a" });
    forwarder.forward({ involvedObject: ref, type: "Normal", reason: "B", message: "b" });
    await forwarder.flush();
    assert.equal(sink.received.length, 2);
    assert.deepEqual(clock.sleeps, []);
    assert.deepEqual(forwarder.stats(), { delivered: 0, duplicates: 1, failed: 1, dropped: 0, retries: 0 });
  });

  test("retries a request that gets no answer within requestTimeoutMs", async () => {
    const clock = new FakeClock();
    const forwarder = new FluxEventForwarder({ address: sink.url, clock, requestTimeoutMs: 5_000 });
    sink.hold = true;
    forwarder.forward({ involvedObject: ref, type: "Normal", reason: "Slow", message: "slow" });
    await sink.whenReceived(1);
    await clock.advance(5_000); // the request timer fires
    await clock.whenSleeping(1);
    sink.hold = false;
    await clock.advance(1_000);
    await forwarder.flush();
    assert.equal(sink.received.length, 2);
    assert.deepEqual(forwarder.stats(), { delivered: 1, duplicates: 0, failed: 0, dropped: 0, retries: 1 });
    sink.release();
  });

  test("the queue is bounded: the oldest waiting events are dropped, counted and logged; the one in flight is not", async () => {
    const clock = new FakeClock();
    const { lines, log } = captureLog();
    const forwarder = new FluxEventForwarder({ address: sink.url, clock, log, maxQueue: 3 });
    sink.hold = true;
    forwarder.forward({ involvedObject: ref, type: "Normal", reason: "E0", message: "0" });
    await sink.whenReceived(1);
    for (let i = 1; i <= 5; i++) forwarder.forward({ involvedObject: ref, type: "Normal", reason: `E${i}`, message: String(i) });
    assert.equal(forwarder.queued, 3);
    sink.hold = false;
    sink.release();
    await forwarder.flush();
    assert.deepEqual(
      sink.received.map((r) => r.event.reason),
      ["E0", "E3", "E4", "E5"],
    );
    assert.equal(forwarder.stats().dropped, 2);
    assert.equal(forwarder.stats().delivered, 4);
    const dropLines = lines.filter((l) => l.msg === "Flux events dropped: the queue to notification-controller is full");
    assert.equal(dropLines.length, 1, "one line per interval, not one per drop");
    assert.equal(dropLines[0]!.dropped, 1, "the first drop is logged at once");
    await forwarder.close();
    const after = lines.filter((l) => l.msg === "Flux events dropped: the queue to notification-controller is full");
    assert.equal(after.length, 2, "close() logs the drops not yet logged");
    assert.equal(after[1]!.dropped, 1);
    assert.equal(after[1]!.droppedTotal, 2);
  });

  test("close() delivers what is queued, cuts a backoff short for one last try, then ignores new events", async () => {
    const clock = new FakeClock();
    const forwarder = new FluxEventForwarder({ address: sink.url, clock });
    sink.script = [500, 500];
    forwarder.forward({ involvedObject: ref, type: "Normal", reason: "First", message: "1" });
    forwarder.forward({ involvedObject: ref, type: "Normal", reason: "Second", message: "2" });
    await clock.whenSleeping(1); // First is waiting out its backoff
    await forwarder.close();
    assert.deepEqual(
      sink.received.map((r) => r.event.reason),
      ["First", "First", "Second"],
      "First: its try, one last try (500 again) without waiting; Second: delivered",
    );
    assert.deepEqual(forwarder.stats(), { delivered: 1, duplicates: 0, failed: 1, dropped: 0, retries: 1 });
    forwarder.forward({ involvedObject: ref, type: "Normal", reason: "Late", message: "late" });
    await forwarder.flush();
    assert.equal(sink.received.length, 3);
  });

  test("a refused connection is retried and, at close, given up", async () => {
    const dead = createServer();
    await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    const clock = new FakeClock();
    const { lines, log } = captureLog();
    const forwarder = new FluxEventForwarder({ address: `http://127.0.0.1:${port}/`, clock, log });
    forwarder.forward({ involvedObject: ref, type: "Normal", reason: "Nobody", message: "home" });
    await clock.whenSleeping(1);
    await forwarder.close();
    assert.deepEqual(forwarder.stats(), { delivered: 0, duplicates: 0, failed: 1, dropped: 0, retries: 1 });
    const warn = lines.find((l) => l.level === "warn");
    assert.match(String(warn?.err), /ECONNREFUSED/);
  });

  test("refuses an address that is not an http(s) URL", () => {
    assert.throws(() => new FluxEventForwarder({ address: "notification-controller:9090" }), /http\(s\) URL|Invalid URL/);
    assert.throws(() => new FluxEventForwarder({ address: "not a url" }), /Invalid URL/);
  });
});

describe("EventRecorder with a forwarder", () => {
  const kube: EventClient & { created: KubeObject[] } = {
    created: [],
    create: async (obj: KubeObject) => {
      kube.created.push(obj);
      return obj;
    },
    patch: async () => ({}) as KubeObject,
  } as unknown as EventClient & { created: KubeObject[] };

  test("every occurrence goes to the forwarder with its metadata and the object's annotations; the Kubernetes Event is unchanged", async () => {
    const forwarded: Parameters<EventForwarder["forward"]>[0][] = [];
    let flushed = 0;
    let closed = 0;
    const forwarder: EventForwarder = {
      forward: (e) => forwarded.push(e),
      flush: async () => void flushed++,
      close: async () => void closed++,
    };
    const clock = new FakeClock();
    const recorder = new EventRecorder(kube, { clock, forwarder, reportingInstance: "pod-1" });
    recorder.normal(stageSet, "Succeeded", "all stages Ready", { revision: "main@sha1:0a1b2c" });
    recorder.warning(ref, "StageFailed", "boom");
    recorder.warning(ref, "StageFailed", "boom");
    await recorder.flush();
    assert.equal(flushed, 1);
    assert.equal(forwarded.length, 3, "repeats are folded in the Kubernetes Event, not in the forwarded stream");
    assert.deepEqual(forwarded[0], {
      involvedObject: ref,
      type: "Normal",
      reason: "Succeeded",
      message: "all stages Ready",
      metadata: { revision: "main@sha1:0a1b2c" },
      annotations: stageSet.metadata.annotations,
    });
    assert.deepEqual(forwarded[1], { involvedObject: ref, type: "Warning", reason: "StageFailed", message: "boom" });
    assert.equal(kube.created.length, 2);
    assert.equal((kube.created[0] as unknown as { reason: string }).reason, "Succeeded");
    assert.ok(!JSON.stringify(kube.created).includes("sha1:0a1b2c"), "metadata is not written to the Kubernetes Event");
    await recorder.close();
    assert.equal(closed, 1);
    recorder.normal(stageSet, "After", "closed");
    assert.equal(forwarded.length, 3);
  });

  test("end to end: recorder → FluxEventForwarder → HTTP", async () => {
    const clock = new FakeClock({ start: Date.UTC(2025, 5, 1, 8, 30) });
    const forwarder = new FluxEventForwarder({ address: sink.url, clock, reportingInstance: "pod-2" });
    const recorder = new EventRecorder(kube, { clock, forwarder });
    recorder.warning(stageSet, "StageFailed", 'stage "db" failed', { revision: "v2" });
    await recorder.close();
    assert.deepEqual(sink.received.map((r) => r.event), [
      {
        involvedObject: ref,
        severity: "error",
        timestamp: "2025-06-01T08:30:00Z",
        message: 'stage "db" failed',
        reason: "StageFailed",
        metadata: { "stages.metio.wtf/revision": "v2", "event.toolkit.fluxcd.io/cluster": "prod-eu" },
        reportingController: "stageset-controller",
        reportingInstance: "pod-2",
      },
    ]);
  });
});

describe("--events-addr", () => {
  test("off by default; an http(s) URL turns forwarding on; anything else is refused naming the flag", () => {
    assert.equal(parseControllerFlags([], {}).eventsAddr, "");
    const addr = "http://notification-controller.flux-system.svc.cluster.local./";
    assert.equal(parseControllerFlags(["--events-addr", addr], {}).eventsAddr, addr);
    assert.throws(() => parseControllerFlags(["--events-addr=notification-controller:80"], {}), (err: unknown) => err instanceof FlagError && /--events-addr wants an http\(s\) URL/.test(err.message));
  });
});

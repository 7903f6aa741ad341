import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { KubeApiError } from "../../../src/kube/errors.js";
import { KubeConfig } from "../../../src/kube/kubeconfig-file.js";
import { Transport } from "../../../src/kube/transport.js";
import { systemClock } from "../../../src/util/clock.js";
import { pollUntil } from "../../../src/util/poll.js";

// A plain HTTP server on loopback stands in for the API server: these tests
// are about the client's deadlines and cancellation, not the Kubernetes API.
let server: http.Server;
let base = "";
const stalled: http.ServerResponse[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    const path = req.url ?? "";
    if (path.startsWith("/ok")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ path }));
    } else if (path.startsWith("/no-answer")) {
      stalled.push(res); // never answered
    } else if (path.startsWith("/half-body")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"items": [');
      stalled.push(res); // the rest never comes
    } else if (path.startsWith("/stream")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"type":"ADDED"}\n');
      stalled.push(res);
    } else {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ kind: "Status", reason: "NotFound", message: "no such thing" }));
    }
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  for (const res of stalled) res.destroy();
  server.closeAllConnections();
  server.close();
});

function transport(timeoutMs?: number): Transport {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: base, skipTLSVerify: false }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return new Transport(kc, timeoutMs === undefined ? {} : { timeoutMs });
}

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

describe("Transport deadlines and cancellation", () => {
  it("leaves no timer behind once an answer is read, over kept-alive connections", async () => {
    const t = transport();
    try {
      const before = activeTimers();
      for (let i = 0; i < 20; i++) {
        const body = await t.json<{ path: string }>({ verb: "get", method: "GET", path: `/ok/${i}`, operation: "reading" });
        assert.equal(body.path, `/ok/${i}`);
      }
      // The request's close (which clears its timer) follows the answer by a tick.
      await pollUntil(systemClock, { timeoutMs: 2_000, intervalMs: 5 }, async () => (activeTimers() <= before ? true : undefined));
    } finally {
      t.close();
    }
  });

  it("fails a request the server never answers with a Timeout naming the operation", async () => {
    const t = transport(150);
    try {
      await assert.rejects(
        t.json({ verb: "get", method: "GET", path: "/no-answer", operation: "reading ConfigMap a/b" }),
        (err: unknown) => err instanceof KubeApiError && err.statusReason === "Timeout" && /reading ConfigMap a\/b/.test(err.message) && /150ms/.test(err.message),
      );
    } finally {
      t.close();
    }
  });

  it("a request's own deadline overrides the transport's", async () => {
    const t = transport(); // the 30 s default
    try {
      const started = performance.now();
      await assert.rejects(
        t.json({ verb: "get", method: "GET", path: "/no-answer", operation: "reading ConfigMap a/b", timeoutMs: 120 }),
        (err: unknown) => err instanceof KubeApiError && err.statusReason === "Timeout" && /120ms/.test(err.message),
      );
      assert.ok(performance.now() - started < 10_000);
    } finally {
      t.close();
    }
  });

  it("counts a body that stops half way against the same deadline", async () => {
    const t = transport(150);
    try {
      await assert.rejects(
        t.json({ verb: "list", method: "GET", path: "/half-body", operation: "listing ConfigMaps" }),
        (err: unknown) => err instanceof KubeApiError && err.statusReason === "Timeout",
      );
    } finally {
      t.close();
    }
  });

  it("stops at once when the caller aborts, handing back an AbortError, not an API failure", async () => {
    const t = transport(30_000);
    try {
      const controller = new AbortController();
      const pending = t.json({ verb: "get", method: "GET", path: "/no-answer", operation: "reading", signal: controller.signal });
      setImmediate(() => controller.abort(new Error("shutting down")));
      await assert.rejects(pending, (err: unknown) => err instanceof Error && err.name === "AbortError" && !(err instanceof KubeApiError));
      // A signal already aborted sends nothing.
      await assert.rejects(t.json({ verb: "get", method: "GET", path: "/ok", operation: "reading", signal: controller.signal }), { name: "AbortError" });
    } finally {
      t.close();
    }
  });

  it("gives a watch no overall deadline (no timer armed for it), only the caller's abort ends it", async () => {
    const t = transport(100);
    try {
      const controller = new AbortController();
      const timersBefore = activeTimers();
      const res = await t.stream({ verb: "watch", method: "GET", path: "/stream", operation: "watching", signal: controller.signal });
      const first = await new Promise<string>((resolve) => res.once("data", (chunk: Buffer) => resolve(chunk.toString("utf8"))));
      assert.match(first, /ADDED/);
      assert.equal(activeTimers(), timersBefore, "a watch must not carry the request timeout");
      const closed = new Promise<void>((resolve) => res.once("close", resolve));
      controller.abort();
      await closed;
    } finally {
      t.close();
    }
  });

  it("still turns an error status into a KubeApiError with the server's reason", async () => {
    const t = transport();
    try {
      await assert.rejects(
        t.json({ verb: "get", method: "GET", path: "/missing", operation: "reading Secret a/b" }),
        (err: unknown) => err instanceof KubeApiError && err.statusReason === "NotFound" && err.status === 404,
      );
    } finally {
      t.close();
    }
  });
});

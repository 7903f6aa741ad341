import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { parseBindAddress, startProbeServer } from "../../../src/server/probes.js";

describe("parseBindAddress", () => {
  it("accepts controller-runtime style addresses", () => {
    assert.deepEqual(parseBindAddress(":8081"), { host: undefined, port: 8081 });
    assert.deepEqual(parseBindAddress("127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
    assert.deepEqual(parseBindAddress("[::1]:9440"), { host: "::1", port: 9440 });
    assert.deepEqual(parseBindAddress("localhost:80"), { host: "localhost", port: 80 });
  });

  it("rejects malformed addresses with an example of the right form", () => {
    assert.throws(() => parseBindAddress("8081"), /not host:port .*":8081"/);
    assert.throws(() => parseBindAddress(":99999"), /out of range/);
  });
});

describe("probe server", async () => {
  let synced = false;
  const server = await startProbeServer({
    bindAddress: "127.0.0.1:0",
    readyChecks: { informers: () => synced },
    healthChecks: {
      throws: () => {
        throw new Error("secret-token-xyz");
      },
    },
    checkTimeoutMs: 100,
  });
  after(() => server.close());
  const base = `http://127.0.0.1:${server.port}`;

  it("binds a free port", () => {
    assert.ok(server.port > 0);
  });

  it("readyz is 500 until the readiness check passes, then 200", async () => {
    const before = await fetch(`${base}/readyz`);
    assert.equal(before.status, 500);
    assert.match(await before.text(), /\[-\]informers failed: reason withheld/);
    synced = true;
    const afterSync = await fetch(`${base}/readyz`);
    assert.equal(afterSync.status, 200);
    assert.equal(await afterSync.text(), "ok");
  });

  it("a throwing check fails without leaking its error", async () => {
    const res = await fetch(`${base}/healthz?verbose`);
    assert.equal(res.status, 500);
    const body = await res.text();
    assert.match(body, /\[\+\]ping ok/);
    assert.match(body, /\[-\]throws failed/);
    assert.doesNotMatch(body, /secret-token-xyz/);
  });

  it("serves single checks, added checks, and times slow checks out", async () => {
    assert.equal((await fetch(`${base}/healthz/ping`)).status, 200);
    assert.equal((await fetch(`${base}/healthz/nope`)).status, 404);
    server.addReadyCheck("slow", () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 1000)));
    assert.equal((await fetch(`${base}/readyz/slow`)).status, 500);
  });

  it("answers 404 elsewhere and 405 to other methods", async () => {
    assert.equal((await fetch(`${base}/metrics`)).status, 404);
    assert.equal((await fetch(`${base}/healthz`, { method: "POST" })).status, 405);
  });
});

describe("probe server close", () => {
  it("frees the port", async () => {
    const server = await startProbeServer({ bindAddress: "127.0.0.1:0" });
    await server.close();
    await assert.rejects(fetch(`http://127.0.0.1:${server.port}/healthz`));
  });

  it("reports a port already in use", async () => {
    const first = await startProbeServer({ bindAddress: "127.0.0.1:0" });
    try {
      await assert.rejects(startProbeServer({ bindAddress: `127.0.0.1:${first.port}` }), /EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});

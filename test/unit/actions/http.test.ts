// The http action against real HTTP servers on loopback that count their
// connections: the SSRF matrix (each refused case makes no connection at
// all), explicit listing, no second DNS resolution, redirects checked hop by
// hop, status checks, bounded reads and the timeout on the action's clock.
import assert from "node:assert/strict";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createHttpExecutor, MAX_RESPONSE_BYTES } from "../../../src/actions/http.js";
import type { HostResolver } from "../../../src/actions/host-policy.js";
import type { ActionEnv } from "../../../src/actions/types.js";
import type { Action, StageSet } from "../../../src/api/types.js";
import { Reasons, StageFailedError } from "../../../src/errors.js";
import type { KubeClient } from "../../../src/kube/client.js";
import { systemClock, type Clock } from "../../../src/util/clock.js";
import { silentLogger } from "../../../src/util/log.js";
import { createPki } from "../../support/controlplane/pki.js";
import { FakeClock } from "../../support/fake-clock.js";

interface Seen {
  method: string;
  url: string;
  host: string | undefined;
  body: string;
}

interface TestServer {
  port: number;
  host: string;
  connections: number;
  requests: Seen[];
  /** Answers a request; default 200 "ok". */
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void;
  close(): Promise<void>;
}

async function startServer(host = "127.0.0.1"): Promise<TestServer> {
  const state: TestServer = {
    port: 0,
    host,
    connections: 0,
    requests: [],
    handler: (_req, res) => res.end("ok"),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      state.requests.push({ method: req.method ?? "", url: req.url ?? "", host: req.headers.host, body });
      state.handler(req, res, body);
    });
  });
  server.on("connection", () => state.connections++);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  state.port = (server.address() as AddressInfo).port;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

const stageSet = { apiVersion: "stages.metio.wtf/v1", kind: "StageSet", metadata: { name: "s", namespace: "n" }, spec: { stages: [] } } as unknown as StageSet;

function envFor(allowedHosts: string[], options: { clock?: Clock; signal?: AbortSignal; timeoutMs?: number } = {}): ActionEnv {
  return {
    stageSet,
    stage: { name: "app", sourceRef: { name: "app" } },
    stageIndex: 0,
    list: "post",
    revision: "r1",
    tenant: {} as KubeClient,
    render: () => Promise.reject(new Error("no sources here")),
    allowedHosts,
    timeoutMs: options.timeoutMs ?? 30_000,
    clock: options.clock ?? systemClock,
    signal: options.signal ?? new AbortController().signal,
    log: silentLogger(),
  };
}

const action = (url: string, extra: Partial<NonNullable<Action["http"]>> = {}): Action => ({ name: "notify", http: { url, ...extra } });

/** A resolver that answers from a table and counts its calls. */
function tableResolver(table: Record<string, string[]>): HostResolver & { calls: string[] } {
  const calls: string[] = [];
  const resolver = (async (hostname: string) => {
    calls.push(hostname);
    const answers = table[hostname];
    if (!answers) throw new Error(`getaddrinfo ENOTFOUND ${hostname}`);
    return answers.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  }) as HostResolver & { calls: string[] };
  resolver.calls = calls;
  return resolver;
}

async function expectRefusal(promise: Promise<unknown>, pattern: RegExp): Promise<string> {
  let message = "";
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof StageFailedError, String(err));
    assert.equal(err.reason, Reasons.StageFailed);
    message = err.message;
    assert.match(err.message, pattern);
    return true;
  });
  return message;
}

let target: TestServer;
let other: TestServer;
let ipv6: TestServer | undefined;

before(async () => {
  target = await startServer();
  other = await startServer();
  try {
    ipv6 = await startServer("::1");
  } catch {
    ipv6 = undefined; // no IPv6 loopback on this machine
  }
});

after(async () => {
  await target.close();
  await other.close();
  await ipv6?.close();
});

describe("http action: the SSRF matrix (every refusal makes no connection)", () => {
  const run = createHttpExecutor();

  it("loopback without an explicit listing is refused, even by the catch-all glob", async () => {
    const before = target.connections;
    await expectRefusal(
      run(action(`http://127.0.0.1:${target.port}/hook`), envFor(["*"])),
      new RegExp(`^http action "notify": POST http://127\\.0\\.0\\.1:${target.port}/hook refused: host 127\\.0\\.0\\.1:${target.port} is a loopback address, refused unless listed explicitly`),
    );
    assert.equal(target.connections, before);
  });

  it("a glob never allows loopback (127.0.0.*)", async () => {
    const before = target.connections;
    await expectRefusal(run(action(`http://127.0.0.1:${target.port}/`), envFor(["127.0.0.*"])), /loopback address/);
    assert.equal(target.connections, before);
  });

  it("169.254.169.254 (cloud metadata) is refused before any connection", async () => {
    const resolver = tableResolver({});
    await expectRefusal(createHttpExecutor({ resolver })(action("http://169.254.169.254/latest/meta-data/"), envFor(["*"])), /169\.254\.169\.254 is a cloud metadata address/);
    assert.deepEqual(resolver.calls, []);
  });

  it("0.0.0.0 (which Linux routes to this machine) is refused", async () => {
    const before = target.connections;
    await expectRefusal(run(action(`http://0.0.0.0:${target.port}/`), envFor(["*"])), /0\.0\.0\.0:\d+ is a unspecified address|is a unspecified address|unspecified/);
    assert.equal(target.connections, before);
  });

  it("[::1] is refused", async () => {
    const port = ipv6?.port ?? target.port;
    const before = ipv6?.connections ?? 0;
    await expectRefusal(run(action(`http://[::1]:${port}/`), envFor(["*"])), /\[::1\]:\d+ is a loopback address/);
    assert.equal(ipv6?.connections ?? 0, before);
  });

  it("a name that resolves to loopback is refused after resolution: localhost (system resolver)", async () => {
    const before = target.connections;
    await expectRefusal(run(action(`http://localhost:${target.port}/`), envFor(["*"])), /localhost:\d+ resolves to (127\.0\.0\.1|::1), a loopback address/);
    assert.equal(target.connections, before);
  });

  it("a name that resolves to loopback is refused after resolution: a glob-allowed name (injected resolver)", async () => {
    const resolver = tableResolver({ "hooks.example.com": ["93.184.216.34", "127.0.0.1"] });
    const before = target.connections;
    await expectRefusal(
      createHttpExecutor({ resolver })(action(`http://hooks.example.com:${target.port}/`), envFor(["*.example.com"])),
      /hooks\.example\.com:\d+ resolves to 127\.0\.0\.1, a loopback address/,
    );
    assert.equal(target.connections, before);
  });

  it("a host no entry allows is refused, naming it", async () => {
    const before = target.connections;
    await expectRefusal(run(action(`http://127.0.0.1:${target.port}/`), envFor([])), /is not allowed by --allowed-action-hosts \(no host is allowed/);
    assert.equal(target.connections, before);
  });

  it("an explicit listing allows loopback: one connection, the request as specified", async () => {
    const before = target.connections;
    const result = await run(action(`http://127.0.0.1:${target.port}/hook?x=1`, { headers: { "X-Trace": "abc" } }), envFor([`127.0.0.1:${target.port}`]));
    assert.equal(result.message, `POST http://127.0.0.1:${target.port}/hook answered 200`);
    assert.equal(target.connections, before + 1);
    assert.deepEqual(target.requests.at(-1), { method: "POST", url: "/hook?x=1", host: `127.0.0.1:${target.port}`, body: "" });
  });

  it("[::1] listed explicitly is allowed", async (t) => {
    if (ipv6 === undefined) {
      t.skip("no IPv6 loopback");
      return;
    }
    const server = ipv6;
    const before = server.connections;
    await run(action(`http://[::1]:${server.port}/`, { method: "GET" }), envFor(["[::1]"]));
    assert.equal(server.connections, before + 1);
  });

  it("connects to the checked address: the name is resolved once (no rebinding), Host stays the name", async () => {
    let calls = 0;
    // A rebinding resolver: loopback (listed) first, then the metadata address.
    const resolver: HostResolver = async () => (calls++ === 0 ? [{ address: "127.0.0.1", family: 4 }] : [{ address: "169.254.169.254", family: 4 }]);
    const before = target.connections;
    await createHttpExecutor({ resolver })(action(`http://gate.test:${target.port}/ok`, { method: "PUT" }), envFor([`gate.test:${target.port}`]));
    assert.equal(calls, 1);
    assert.equal(target.connections, before + 1);
    assert.deepEqual(target.requests.at(-1), { method: "PUT", url: "/ok", host: `gate.test:${target.port}`, body: "" });
  });
});

describe("http action: redirects", () => {
  const run = createHttpExecutor();

  it("a redirect from an allowed host to a refused one is not followed, and names it", async () => {
    target.handler = (_req, res) => {
      res.writeHead(302, { location: `http://127.0.0.1:${other.port}/internal` });
      res.end();
    };
    const otherBefore = other.connections;
    try {
      await expectRefusal(
        run(action(`http://127.0.0.1:${target.port}/start`), envFor([`127.0.0.1:${target.port}`])),
        new RegExp(
          `redirect from http://127\\.0\\.0\\.1:${target.port}/start to http://127\\.0\\.0\\.1:${other.port}/internal refused: host 127\\.0\\.0\\.1:${other.port} is not allowed`,
        ),
      );
      assert.equal(other.connections, otherBefore);
    } finally {
      target.handler = (_req, res) => res.end("ok");
    }
  });

  it("a redirect to a name resolving to loopback under a glob is refused after resolution", async () => {
    target.handler = (_req, res) => {
      res.writeHead(307, { location: `http://localhost:${other.port}/` });
      res.end();
    };
    const otherBefore = other.connections;
    try {
      await expectRefusal(run(action(`http://127.0.0.1:${target.port}/start`), envFor([`127.0.0.1:${target.port}`, "*"])), /to http:\/\/localhost:\d+\/ refused: host localhost:\d+ resolves to/);
      assert.equal(other.connections, otherBefore);
    } finally {
      target.handler = (_req, res) => res.end("ok");
    }
  });

  it("an allowed redirect is followed; 303 turns POST into GET", async () => {
    target.handler = (req, res) => {
      if (req.url === "/start") {
        res.writeHead(303, { location: "/done" });
        res.end();
      } else {
        res.end("done");
      }
    };
    try {
      const result = await run(action(`http://127.0.0.1:${target.port}/start`), envFor([`127.0.0.1:${target.port}`]));
      assert.equal(result.message, `GET http://127.0.0.1:${target.port}/done answered 200`);
      assert.deepEqual(target.requests.slice(-2).map((r) => `${r.method} ${r.url}`), ["POST /start", "GET /done"]);
    } finally {
      target.handler = (_req, res) => res.end("ok");
    }
  });

  it("a redirect loop ends after a few hops", async () => {
    target.handler = (_req, res) => {
      res.writeHead(302, { location: "/again" });
      res.end();
    };
    try {
      await expectRefusal(run(action(`http://127.0.0.1:${target.port}/`, { method: "GET" }), envFor([`127.0.0.1:${target.port}`])), /more than 5 redirects/);
    } finally {
      target.handler = (_req, res) => res.end("ok");
    }
  });
});

describe("http action: answers", () => {
  const run = createHttpExecutor();

  it("a status outside expectedStatus fails, naming the status and a clipped body", async () => {
    target.handler = (_req, res) => {
      res.writeHead(503);
      res.end("maintenance\nuntil later");
    };
    try {
      await expectRefusal(
        run(action(`http://127.0.0.1:${target.port}/gate`), envFor([`127.0.0.1:${target.port}`])),
        new RegExp(`POST http://127\\.0\\.0\\.1:${target.port}/gate answered 503 \\(expected a 2xx status\\): maintenance until later$`),
      );
      const ok = await run(action(`http://127.0.0.1:${target.port}/gate`, { expectedStatus: [503] }), envFor([`127.0.0.1:${target.port}`]));
      assert.match(ok.message, /answered 503$/);
    } finally {
      target.handler = (_req, res) => res.end("ok");
    }
  });

  it("reads at most 64 KiB of a large answer", async () => {
    const big = "x".repeat(4 * MAX_RESPONSE_BYTES);
    target.handler = (_req, res) => {
      res.writeHead(500);
      res.end(big);
    };
    try {
      const message = await expectRefusal(run(action(`http://127.0.0.1:${target.port}/`), envFor([`127.0.0.1:${target.port}`])), /answered 500/);
      assert.ok(message.length < 400, `clipped: ${message.length} characters`);
    } finally {
      target.handler = (_req, res) => res.end("ok");
    }
  });

  it("times out on the action's clock when no answer comes", async () => {
    const clock = new FakeClock();
    target.handler = () => {
      /* never answers */
    };
    const requestsBefore = target.requests.length;
    try {
      const pending = run(action(`http://127.0.0.1:${target.port}/slow`), envFor([`127.0.0.1:${target.port}`], { clock, timeoutMs: 5_000 }));
      const outcome = expectRefusal(pending, /POST http:\/\/127\.0\.0\.1:\d+\/slow: no answer within the action's timeout \(5000ms\)/);
      // Time moves once the request has arrived (polled, not slept).
      while (target.requests.length === requestsBefore) await new Promise((resolve) => setImmediate(resolve));
      await clock.advance(5_000);
      await outcome;
    } finally {
      target.handler = (_req, res) => res.end("ok");
    }
  });

  it("an aborted signal ends the request with its reason", async () => {
    const controller = new AbortController();
    target.handler = () => {
      /* never answers */
    };
    const requestsBefore = target.requests.length;
    try {
      const pending = run(action(`http://127.0.0.1:${target.port}/slow`), envFor([`127.0.0.1:${target.port}`], { signal: controller.signal }));
      const outcome = assert.rejects(pending, /superseded/);
      while (target.requests.length === requestsBefore) await new Promise((resolve) => setImmediate(resolve));
      controller.abort(new Error("superseded"));
      await outcome;
    } finally {
      target.handler = (_req, res) => res.end("ok");
    }
  });
});

describe("http action: https", () => {
  it("connects to the checked address with the URL's name for TLS: a certificate the system does not trust is refused", async () => {
    const pki = createPki({ servingAltNames: ["hooks.test"] });
    let connections = 0;
    const server = https.createServer({ cert: pki.serving.certPem, key: pki.serving.keyPem }, (_req, res) => res.end("ok"));
    server.on("connection", () => connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const resolver = tableResolver({ "hooks.test": ["127.0.0.1"] });
      await expectRefusal(
        createHttpExecutor({ resolver })(action(`https://hooks.test:${port}/`), envFor([`hooks.test:${port}`])),
        new RegExp(`POST https://hooks\\.test:${port}/: (unable to verify the first certificate|self[- ]signed certificate)`),
      );
      assert.deepEqual(resolver.calls, ["hooks.test"]);
      assert.equal(connections, 1, "reached the pinned address");
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

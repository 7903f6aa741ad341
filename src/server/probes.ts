import http from "node:http";
import type { AddressInfo } from "node:net";

/** Passes unless it throws or returns false. */
export type ProbeCheck = () => boolean | void | Promise<boolean | void>;

export interface ProbeServerOptions {
  /** `:8081`, `127.0.0.1:0`, `[::1]:8081`; port 0 picks a free one. */
  bindAddress: string;
  /** Liveness checks behind /healthz; a `ping` check that always passes is built in. */
  healthChecks?: Record<string, ProbeCheck>;
  /** Readiness checks behind /readyz (e.g. "informers synced"); a `ping` check is built in. */
  readyChecks?: Record<string, ProbeCheck>;
  /** A check that has not answered after this long fails; default 5s. */
  checkTimeoutMs?: number;
}

export interface ProbeServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly host: string;
  addHealthCheck(name: string, check: ProbeCheck): void;
  addReadyCheck(name: string, check: ProbeCheck): void;
  close(): Promise<void>;
}

/** `host:port` from a controller-runtime style bind address; an empty host means every interface. */
export function parseBindAddress(address: string): { host: string | undefined; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address.trim());
  if (!match) {
    throw new RangeError(`bind address "${address}" is not host:port (examples: ":8081", "127.0.0.1:8081", "[::1]:8081")`);
  }
  const port = Number(match[3]);
  if (port > 65535) throw new RangeError(`bind address "${address}": port ${port} is out of range`);
  const host = match[1] ?? match[2];
  return { host: host || undefined, port };
}

/**
 * Serves `/healthz` and `/readyz` like controller-runtime: 200 `ok` when
 * every check passes, 500 listing the failing ones otherwise (`?verbose`
 * lists all); `/healthz/<check>` and `/readyz/<check>` run a single check.
 * Failure details are withheld from the body: probes are unauthenticated.
 */
export async function startProbeServer(options: ProbeServerOptions): Promise<ProbeServer> {
  const { host, port } = parseBindAddress(options.bindAddress);
  const timeoutMs = options.checkTimeoutMs ?? 5_000;
  const groups: Record<"healthz" | "readyz", Map<string, ProbeCheck>> = {
    healthz: new Map([["ping", () => true], ...Object.entries(options.healthChecks ?? {})]),
    readyz: new Map([["ping", () => true], ...Object.entries(options.readyChecks ?? {})]),
  };

  const server = http.createServer((req, res) => {
    void handle(req, res);
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://probe");
    const [, group, single, ...rest] = url.pathname.split("/");
    const checks = group === "healthz" || group === "readyz" ? groups[group] : undefined;
    if (!checks || rest.length > 0) return reply(res, 404, "not found\n");
    if (req.method !== "GET" && req.method !== "HEAD") return reply(res, 405, "method not allowed\n");
    const selected = single ? [...checks].filter(([name]) => name === single) : [...checks];
    if (single && selected.length === 0) return reply(res, 404, `no check "${single}"\n`);

    const results = await Promise.all(selected.map(async ([name, check]) => [name, await passes(check, timeoutMs)] as const));
    const failed = results.filter(([, ok]) => !ok);
    if (failed.length === 0 && !url.searchParams.has("verbose")) return reply(res, 200, "ok");
    const lines = results
      .filter(([, ok]) => !ok || url.searchParams.has("verbose"))
      .map(([name, ok]) => (ok ? `[+]${name} ok` : `[-]${name} failed: reason withheld`));
    lines.push(failed.length === 0 ? `${group} check passed` : `${group} check failed`);
    reply(res, failed.length === 0 ? 200 : 500, `${lines.join("\n")}\n`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;

  return {
    port: address.port,
    host: address.address,
    addHealthCheck: (name, check) => void groups.healthz.set(name, check),
    addReadyCheck: (name, check) => void groups.readyz.set(name, check),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function passes(check: ProbeCheck, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    const result = await Promise.race([Promise.resolve().then(check), timeout]);
    return result !== false;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

function reply(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "x-content-type-options": "nosniff",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

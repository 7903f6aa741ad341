import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Route = (req: IncomingMessage, res: ServerResponse, attempt: number) => void;

/** A real HTTP server on 127.0.0.1 that serves artifacts the way source-controller does. */
export class ArtifactServer {
  private readonly routes = new Map<string, Route>();
  private readonly hits = new Map<string, number>();
  private server: Server | undefined;
  private base = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://localhost").pathname;
      const attempt = (this.hits.get(path) ?? 0) + 1;
      this.hits.set(path, attempt);
      const route = this.routes.get(path);
      if (!route) {
        res.writeHead(404).end("not found");
        return;
      }
      route(req, res, attempt);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  /** Registers `route` at `path` and returns its URL. */
  route(path: string, route: Route): string {
    this.routes.set(path, route);
    return this.url(path);
  }

  /** Serves `body` with 200 at `path` and returns its URL. */
  serve(path: string, body: Buffer): string {
    return this.route(path, (_req, res) => {
      res.writeHead(200, { "content-type": "application/gzip", "content-length": body.length }).end(body);
    });
  }

  url(path: string): string {
    return `${this.base}${path}`;
  }

  hitsOf(path: string): number {
    return this.hits.get(path) ?? 0;
  }
}

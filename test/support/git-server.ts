/**
 * A git server on loopback for tests: bare repositories in a temporary
 * directory, served over HTTP by the system's `git http-backend` (the smart
 * HTTP protocol, what source-controller's go-git client speaks) behind a
 * small Node CGI wrapper. Read-only over HTTP: commits are pushed by the test
 * through the file system (`commit()`), as a developer's push would land.
 *
 * `git` comes from the system's packages (hack/tools.sh installs it when
 * `git http-backend` is missing).
 */
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export class GitServer {
  #server: Server | undefined;
  #dir = "";
  #baseUrl = "";
  #env: NodeJS.ProcessEnv = {};
  /** Requests served, by repository path (`/name.git`), for tests that assert fetches happened. */
  readonly hits = new Map<string, number>();

  async start(): Promise<void> {
    this.#dir = mkdtempSync(join(tmpdir(), "git-server-"));
    mkdirSync(join(this.#dir, "repos"));
    mkdirSync(join(this.#dir, "work"));
    // No user or system configuration: commits are reproducible and nothing of the machine leaks in.
    this.#env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: this.#dir,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_AUTHOR_NAME: "stageset test",
      GIT_AUTHOR_EMAIL: "test@stageset.invalid",
      GIT_COMMITTER_NAME: "stageset test",
      GIT_COMMITTER_EMAIL: "test@stageset.invalid",
    };
    this.#server = createServer((req, res) => this.#cgi(req, res));
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    this.#baseUrl = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    if (this.#server) {
      this.#server.closeAllConnections();
      await new Promise<void>((resolve) => this.#server!.close(() => resolve()));
      this.#server = undefined;
    }
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = "";
  }

  /** The clone URL of repository `name` (`http://127.0.0.1:<port>/<name>.git`). */
  url(name: string): string {
    return `${this.#baseUrl}/${name}.git`;
  }

  /** Creates a bare repository `name` with branch `main` holding `files`; returns the commit's SHA-1. */
  async createRepo(name: string, files: Record<string, string>, message = "initial commit"): Promise<string> {
    const bare = join(this.#dir, "repos", `${name}.git`);
    const work = join(this.#dir, "work", name);
    await this.#git(this.#dir, "init", "--quiet", "--bare", "--initial-branch=main", bare);
    await this.#git(this.#dir, "init", "--quiet", "--initial-branch=main", work);
    await this.#git(work, "remote", "add", "origin", bare);
    return this.commit(name, files, message);
  }

  /**
   * Writes `files` into the work tree of `name` (a `null` content deletes the
   * file), commits everything and pushes `main`; returns the new commit's SHA-1.
   */
  async commit(name: string, files: Record<string, string | null>, message: string): Promise<string> {
    const work = join(this.#dir, "work", name);
    for (const [path, content] of Object.entries(files)) {
      const target = join(work, path);
      if (content === null) {
        rmSync(target, { force: true });
      } else {
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, content);
      }
    }
    await this.#git(work, "add", "--all");
    await this.#git(work, "commit", "--quiet", "--allow-empty", "-m", message);
    await this.#git(work, "push", "--quiet", "origin", "main");
    return (await this.#git(work, "rev-parse", "HEAD")).trim();
  }

  async #git(cwd: string, ...args: string[]): Promise<string> {
    const { stdout } = await run("git", args, { cwd, env: this.#env });
    return stdout;
  }

  /** One CGI request to `git http-backend` (RFC 3875 variables in, a CGI response out). */
  #cgi(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://x");
    const repo = url.pathname.split("/").slice(0, 2).join("/");
    this.hits.set(repo, (this.hits.get(repo) ?? 0) + 1);
    const child = spawn("git", ["http-backend"], {
      env: {
        ...this.#env,
        GIT_PROJECT_ROOT: join(this.#dir, "repos"),
        GIT_HTTP_EXPORT_ALL: "1",
        GATEWAY_INTERFACE: "CGI/1.1",
        REQUEST_METHOD: req.method ?? "GET",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        ...(req.headers["content-length"] ? { CONTENT_LENGTH: req.headers["content-length"] } : {}),
        ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] } : {}),
        ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
        REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
        SERVER_PROTOCOL: "HTTP/1.1",
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    req.pipe(child.stdin);
    let head = Buffer.alloc(0);
    let headerDone = false;
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on("data", (chunk: Buffer) => {
      if (headerDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n") >= 0 ? head.indexOf("\r\n\r\n") : head.indexOf("\n\n");
      if (end < 0) return;
      const sep = head[end] === 13 ? 4 : 2;
      let status = 200;
      for (const line of head.subarray(0, end).toString("latin1").split(/\r?\n/)) {
        const colon = line.indexOf(":");
        if (colon < 0) continue;
        const key = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (key.toLowerCase() === "status") status = Number.parseInt(value, 10);
        else res.setHeader(key, value);
      }
      res.writeHead(status);
      headerDone = true;
      const rest = head.subarray(end + sep);
      if (rest.length > 0) res.write(rest);
    });
    child.once("close", (code) => {
      if (!headerDone) {
        res.writeHead(500).end(`git http-backend exited ${code}: ${stderr}`);
        return;
      }
      res.end();
    });
    child.once("error", (err) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  }
}

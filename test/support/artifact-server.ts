import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";

/**
 * A local stand-in for an artifact producer's HTTP endpoint (what
 * source-controller or JaaS serve): it packs in-memory file trees into
 * .tar.gz tarballs and serves them on 127.0.0.1. Only the network is
 * simulated; the tarballs are real.
 */
export interface PublishedArtifact {
  url: string;
  digest: string;
  revision: string;
  size: number;
}

export class ArtifactServer {
  private readonly blobs = new Map<string, Buffer>();
  private server?: Server;
  private baseUrl = "";
  /** Requests served, by path, so tests can assert caching behaviour. */
  readonly hits = new Map<string, number>();

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
      const blob = this.blobs.get(path);
      if (!blob) {
        res.writeHead(404).end("not found");
        return;
      }
      res.writeHead(200, { "content-type": "application/gzip", "content-length": blob.length }).end(blob);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.baseUrl = `http://127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  /** Stops serving a published artifact (as a producer's garbage collection does); true when it was served. */
  remove(url: string): boolean {
    return this.blobs.delete(new URL(url).pathname);
  }

  /** Serves `files` (path → content) as a tarball; returns the artifact coordinates. */
  add(name: string, files: Record<string, string>, revision?: string): PublishedArtifact {
    return this.addTarball(name, tarGz(files), revision);
  }

  /** Serves raw tarball bytes as they are (for malformed or malicious tarballs). */
  addTarball(name: string, tarball: Buffer, revision?: string): PublishedArtifact {
    const hex = createHash("sha256").update(tarball).digest("hex");
    const path = `/${name}/${hex.slice(0, 16)}.tar.gz`;
    this.blobs.set(path, tarball);
    return {
      url: `${this.baseUrl}${path}`,
      digest: `sha256:${hex}`,
      revision: revision ?? `latest@sha256:${hex}`,
      size: tarball.length,
    };
  }
}

/** A minimal ustar writer: regular files only, paths taken verbatim. */
export function tarGz(files: Record<string, string | Buffer>): Buffer {
  const blocks: Buffer[] = [];
  for (const [path, content] of Object.entries(files)) {
    const body = typeof content === "string" ? Buffer.from(content, "utf8") : content;
    blocks.push(tarHeader(path, body.length, "0"));
    blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

/** One ustar header block; `type` "0" file, "2" symlink, "5" directory, "3" char device … */
export function tarHeader(path: string, size: number, type: string, linkName = ""): Buffer {
  const header = Buffer.alloc(512);
  let name = path;
  let prefix = "";
  if (Buffer.byteLength(name) > 100) {
    const cut = path.lastIndexOf("/", 154);
    prefix = path.slice(0, cut);
    name = path.slice(cut + 1);
  }
  header.write(name, 0, 100, "utf8");
  header.write("0000644\0", 100, 8, "ascii");
  header.write("0000000\0", 108, 8, "ascii");
  header.write("0000000\0", 116, 8, "ascii");
  header.write(size.toString(8).padStart(11, "0") + "\0", 124, 12, "ascii");
  header.write("00000000000\0", 136, 12, "ascii");
  header.write("        ", 148, 8, "ascii");
  header.write(type, 156, 1, "ascii");
  header.write(linkName, 157, 100, "utf8");
  header.write("ustar\0", 257, 6, "ascii");
  header.write("00", 263, 2, "ascii");
  header.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "ascii");
  return header;
}

/**
 * A real S3-compatible server for tests: SeaweedFS (`weed mini`, built by
 * hack/tools.sh from tools/seaweedfs), started on loopback only with static
 * credentials and one bucket, on free ports, in a temporary directory that
 * stop() removes.
 *
 * `weed mini` runs master, volume server, filer and S3 gateway in one
 * process; WebDAV, the admin UI, the Iceberg/Lance endpoints and telemetry are
 * switched off. SSE-S3 works (mini generates a development key-encryption key
 * in its data directory); SSE-KMS needs a KMS provider, which is not
 * configured, so the server refuses `aws:kms` writes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, HeadBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { toolPath } from "../../src/util/tools.js";
import { waitFor } from "./wait.js";

export interface S3ServerOptions {
  /** Buckets that exist after start() (default: one, "stageset-rollback"). */
  buckets?: string[];
  accessKey?: string;
  secretKey?: string;
  /** How long to wait for the server to answer (default 120 s; it is slow to start on a busy machine). */
  startTimeoutMs?: number;
}

/** Asks the kernel for `count` distinct free loopback ports. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<Server>((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve(server));
    })),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

export class S3Server {
  readonly accessKey: string;
  readonly secretKey: string;
  readonly buckets: string[];
  /** `127.0.0.1:<port>` (what `--rollback-store-s3-endpoint` takes). */
  endpoint = "";
  private child?: ChildProcess;
  private dir = "";
  private output = "";
  private readonly startTimeoutMs: number;

  constructor(options: S3ServerOptions = {}) {
    this.accessKey = options.accessKey ?? "stagesettestaccess";
    this.secretKey = options.secretKey ?? "stageset-test-secret-key-0123456789";
    this.buckets = options.buckets ?? ["stageset-rollback"];
    this.startTimeoutMs = options.startTimeoutMs ?? 120_000;
  }

  /** An SDK client with the server's static credentials (for test setup and inspection). */
  client(): S3Client {
    return new S3Client({
      endpoint: `http://${this.endpoint}`,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: this.accessKey, secretAccessKey: this.secretKey },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      maxAttempts: 1,
    });
  }

  async start(): Promise<void> {
    const bin = toolPath("weed");
    if (bin === "weed" && !existsSync(bin)) {
      throw new Error("the SeaweedFS server (weed) is not built: run `hack/tools.sh weed` (or `make setup`)");
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await this.startOnce(bin);
        return;
      } catch (err) {
        await this.stop();
        // A port taken between freePorts() and the server binding it: try again with new ones.
        if (attempt >= 3 || !/address already in use|bind:/i.test(this.output)) throw err;
      }
    }
  }

  private async startOnce(bin: string): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), "s3-server-"));
    const config = join(this.dir, "s3.json");
    writeFileSync(
      config,
      JSON.stringify({
        identities: [
          {
            name: "stageset-test",
            credentials: [{ accessKey: this.accessKey, secretKey: this.secretKey }],
            actions: ["Admin", "Read", "List", "Tagging", "Write"],
          },
        ],
      }),
      { mode: 0o600 },
    );
    const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = await freePorts(8);
    const args = [
      "mini",
      `-dir=${join(this.dir, "data")}`,
      "-ip=127.0.0.1",
      "-ip.bind=127.0.0.1",
      `-master.port=${master}`,
      `-master.port.grpc=${masterGrpc}`,
      "-master.telemetry=false",
      `-volume.port=${volume}`,
      `-volume.port.grpc=${volumeGrpc}`,
      `-filer.port=${filer}`,
      `-filer.port.grpc=${filerGrpc}`,
      `-filer.localSocket=${join(this.dir, "filer.sock")}`,
      `-s3.port=${s3}`,
      `-s3.port.grpc=${s3Grpc}`,
      `-s3.localSocket=${join(this.dir, "s3.sock")}`,
      "-s3.port.iceberg=0",
      "-s3.port.lance=0",
      `-s3.config=${config}`,
      "-s3.autoCreateBucket=false",
      "-webdav=false",
      "-admin.ui=false",
    ];
    mkdirSync(join(this.dir, "data"), { recursive: true });
    // A clean environment: no AWS_* variables (mini would turn them into an identity), no proxies.
    const child = spawn(bin, args, {
      cwd: this.dir,
      env: { PATH: process.env.PATH ?? "", HOME: this.dir, TMPDIR: this.dir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.output = "";
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    let exited: string | undefined;
    child.once("exit", (code, signal) => (exited = `exited with ${code ?? signal}`));
    this.endpoint = `127.0.0.1:${s3}`;

    const client = this.client();
    try {
      // Ready once the S3 gateway answers a signed request and the filer can create a bucket.
      await waitFor(
        async () => {
          for (const bucket of this.buckets) {
            try {
              await client.send(new HeadBucketCommand({ Bucket: bucket }));
            } catch (err) {
              if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) return undefined;
              await client.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => undefined);
              return undefined;
            }
          }
          return true;
        },
        {
          description: `weed mini on ${this.endpoint} to serve its buckets`,
          timeoutMs: this.startTimeoutMs,
          intervalMs: 500,
          abortIf: () => (exited ? `weed mini ${exited}:\n${this.output}` : undefined),
        },
      );
    } finally {
      client.destroy();
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await gone;
      clearTimeout(timer);
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = "";
  }

  /** The server's recent output (for a failing test's message). */
  log(): string {
    return this.output;
  }
}

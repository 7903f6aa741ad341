/**
 * An OCI registry on loopback for tests: the distribution registry
 * (github.com/distribution/distribution/v3 cmd/registry, built by
 * hack/tools.sh from tools/registry), plain HTTP on a free port, filesystem
 * storage in a temporary directory that stop() removes.
 *
 * `push()` is a small OCI distribution client (the three calls a push is:
 * upload the config blob, upload the layer blob, put the manifest) that
 * writes artifacts in the layout `flux push artifact` uses — config
 * `application/vnd.cncf.flux.config.v1+json`, one
 * `application/vnd.cncf.flux.content.v1.tar+gzip` layer, the
 * org.opencontainers.image.{created,source,revision} annotations — so
 * source-controller's OCIRepository reads it as it reads Flux's own.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toolPath } from "../../src/util/tools.js";
import { tarGz } from "./artifact-server.js";
import { freePorts } from "./controlplane/ports.js";
import { waitFor } from "./wait.js";

export const FLUX_CONFIG_MEDIA_TYPE = "application/vnd.cncf.flux.config.v1+json";
export const FLUX_CONTENT_MEDIA_TYPE = "application/vnd.cncf.flux.content.v1.tar+gzip";
const OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json";

export interface PushedArtifact {
  /** `sha256:<hex>` of the manifest: what source-controller puts after the `@` of its revision. */
  manifestDigest: string;
  /** `<tag>@<manifestDigest>`, the OCIRepository's `status.artifact.revision` for a tag reference. */
  revision: string;
}

const sha256 = (data: Buffer | string): string => `sha256:${createHash("sha256").update(data).digest("hex")}`;

export class OciRegistry {
  /** `127.0.0.1:<port>` */
  host = "";
  #child: ChildProcess | undefined;
  #dir = "";
  #output = "";
  #exited: string | undefined;

  async start(timeoutMs = 60_000): Promise<void> {
    const bin = toolPath("registry");
    if (!bin.includes("/") || !existsSync(bin)) {
      throw new Error("the OCI registry is not built: run `hack/tools.sh registry` (or `make setup`)");
    }
    this.#dir = mkdtempSync(join(tmpdir(), "oci-registry-"));
    const [port] = (await freePorts(1)) as [number];
    this.host = `127.0.0.1:${port}`;
    const config = join(this.#dir, "config.yml");
    writeFileSync(
      config,
      [
        "version: 0.1",
        "log: {level: warn, accesslog: {disabled: true}}",
        `storage: {filesystem: {rootdirectory: ${join(this.#dir, "data")}}, delete: {enabled: true}}`,
        `http: {addr: "${this.host}", secret: "${randomBytes(16).toString("hex")}"}`,
        "",
      ].join("\n"),
    );
    const child = spawn(bin, ["serve", config], {
      cwd: this.#dir,
      // No tracing exporter (it would try to reach an OTLP collector).
      env: { PATH: process.env.PATH ?? "", HOME: this.#dir, OTEL_TRACES_EXPORTER: "none", OTEL_SDK_DISABLED: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    const keep = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.once("exit", (code, signal) => (this.#exited = `registry exited (${signal ?? code}):\n${this.#output}`));
    const kill = () => child.kill("SIGKILL");
    process.once("exit", kill);
    child.once("exit", () => process.off("exit", kill));
    await waitFor(
      async () => {
        const res = await fetch(`http://${this.host}/v2/`);
        await res.arrayBuffer();
        return res.ok;
      },
      { description: `the OCI registry on ${this.host}`, timeoutMs, intervalMs: 100, abortIf: () => this.#exited },
    );
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await gone;
      clearTimeout(timer);
    }
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = "";
  }

  /** The OCIRepository `spec.url` of `repository`: `oci://127.0.0.1:<port>/<repository>`. */
  url(repository: string): string {
    return `oci://${this.host}/${repository}`;
  }

  /** Pushes `files` as a Flux artifact to `repository:tag`. */
  async push(repository: string, tag: string, files: Record<string, string>, source = "stageset-test"): Promise<PushedArtifact> {
    const config = Buffer.from("{}");
    const layer = tarGz(files);
    await this.#uploadBlob(repository, config);
    await this.#uploadBlob(repository, layer);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST_MEDIA_TYPE,
        config: { mediaType: FLUX_CONFIG_MEDIA_TYPE, digest: sha256(config), size: config.length },
        layers: [{ mediaType: FLUX_CONTENT_MEDIA_TYPE, digest: sha256(layer), size: layer.length }],
        annotations: {
          "org.opencontainers.image.created": new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          "org.opencontainers.image.source": source,
          "org.opencontainers.image.revision": `${tag}@${sha256(layer)}`,
        },
      }),
    );
    const res = await fetch(`http://${this.host}/v2/${repository}/manifests/${tag}`, {
      method: "PUT",
      headers: { "content-type": OCI_MANIFEST_MEDIA_TYPE },
      body: manifest,
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`PUT manifest ${repository}:${tag}: ${res.status} ${text}`);
    const manifestDigest = sha256(manifest);
    const served = res.headers.get("docker-content-digest");
    if (served && served !== manifestDigest) throw new Error(`the registry stored manifest ${served}, expected ${manifestDigest}`);
    return { manifestDigest, revision: `${tag}@${manifestDigest}` };
  }

  /** A blob upload: POST opens a session, PUT with `?digest=` closes it with the whole body. */
  async #uploadBlob(repository: string, blob: Buffer): Promise<void> {
    const digest = sha256(blob);
    const start = await fetch(`http://${this.host}/v2/${repository}/blobs/uploads/`, { method: "POST" });
    await start.arrayBuffer();
    const location = start.headers.get("location");
    if (start.status !== 202 || !location) throw new Error(`POST blob upload to ${repository}: ${start.status}`);
    const target = new URL(location, `http://${this.host}`);
    target.searchParams.set("digest", digest);
    const put = await fetch(target, { method: "PUT", headers: { "content-type": "application/octet-stream" }, body: blob });
    const text = await put.text();
    if (put.status !== 201) throw new Error(`PUT blob ${digest} to ${repository}: ${put.status} ${text}`);
  }
}

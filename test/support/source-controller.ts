/**
 * Flux's real source-controller for tests: the v1.9.6 binary hack/tools.sh
 * builds from Flux's module (tools/source-controller), run against the test
 * control plane. Its artifact storage is a temporary directory that stop()
 * removes, served by its own HTTP file server on a free loopback port that it
 * also advertises (`--storage-adv-addr`), so `status.artifact.url` is a URL
 * this process (and the controller under test) can fetch.
 *
 * Garbage collection: Flux keeps `--artifact-retention-records` (2) artifacts
 * per object and drops older ones after `--artifact-retention-ttl` (1m);
 * `retentionTtl`/`retentionRecords` make it quick for tests.
 *
 * It starts reconcilers for every source kind, so besides the CRDs the test
 * control plane installs it needs HelmRepository and HelmChart:
 * `ensureSourceCrds` creates them when missing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeClient } from "../../src/kube/client.js";
import { ensureCrds, FluxController, fluxCrdFile, type FluxControllerOptions } from "./flux-controller.js";

export const SOURCE_CONTROLLER_CRDS = ["helmrepositories", "helmcharts"];

export async function ensureSourceCrds(client: KubeClient): Promise<void> {
  await ensureCrds(
    client,
    SOURCE_CONTROLLER_CRDS.map((plural) => fluxCrdFile("flux-controllers", `source.toolkit.fluxcd.io_${plural}.yaml`)),
  );
}

export interface SourceControllerOptions extends FluxControllerOptions {
  /** --artifact-retention-ttl (Flux default 1m). */
  retentionTtl?: string;
  /** --artifact-retention-records (Flux default 2). */
  retentionRecords?: number;
}

export class SourceController extends FluxController {
  #storage = "";
  /** `127.0.0.1:<port>`: where its artifacts are served (and advertised). */
  storageAddress = "";
  readonly #retention: Pick<SourceControllerOptions, "retentionTtl" | "retentionRecords">;

  constructor(options: SourceControllerOptions) {
    super("source-controller", options);
    this.#retention = { retentionTtl: options.retentionTtl, retentionRecords: options.retentionRecords };
  }

  protected override extraPorts(): number {
    return 1;
  }

  protected override args([storagePort]: number[]): string[] {
    this.#storage = mkdtempSync(join(tmpdir(), "source-controller-"));
    this.storageAddress = `127.0.0.1:${storagePort}`;
    return [
      `--storage-path=${this.#storage}`,
      `--storage-addr=${this.storageAddress}`,
      `--storage-adv-addr=${this.storageAddress}`,
      ...(this.#retention.retentionTtl ? [`--artifact-retention-ttl=${this.#retention.retentionTtl}`] : []),
      ...(this.#retention.retentionRecords !== undefined ? [`--artifact-retention-records=${this.#retention.retentionRecords}`] : []),
    ];
  }

  override async stop(): Promise<void> {
    await super.stop();
    if (this.#storage) rmSync(this.#storage, { recursive: true, force: true });
    this.#storage = "";
  }
}

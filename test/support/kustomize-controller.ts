/**
 * Flux's real kustomize-controller (the peer the benchmarks measure against):
 * the v1.9.6 binary hack/tools.sh builds from Flux's module
 * (tools/kustomize-controller), run against the test control plane with its
 * ExternalArtifact feature gate on (Kustomizations may then reference
 * ExternalArtifacts, off by default in v1.9). Everything else is its default
 * unless `extraArgs` says otherwise (e.g. `--concurrent-ssa=10`,
 * `--requeue-dependency=5s`). Its client rate limiter is off by itself: the
 * API server runs API Priority and Fairness.
 */
import type { KubeClient } from "../../src/kube/client.js";
import { ensureCrds, FluxController, fluxCrdFile, type FluxControllerOptions } from "./flux-controller.js";

export const KUSTOMIZATION_API_VERSION = "kustomize.toolkit.fluxcd.io/v1";

export async function ensureKustomizationCrd(client: KubeClient): Promise<void> {
  await ensureCrds(client, [fluxCrdFile("flux-controllers", "kustomize.toolkit.fluxcd.io_kustomizations.yaml")]);
}

export class KustomizeController extends FluxController {
  constructor(options: FluxControllerOptions) {
    super("kustomize-controller", options);
  }

  protected override args(): string[] {
    return ["--feature-gates=ExternalArtifact=true"];
  }
}

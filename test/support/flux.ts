import type { KubeObject } from "../../src/api/types.js";
import type { KubeClient } from "../../src/kube/client.js";
import type { PublishedArtifact } from "./artifact-server.js";

export const SOURCE_API_VERSION = "source.toolkit.fluxcd.io/v1";

/**
 * Creates or updates an ExternalArtifact and writes its status the way a
 * producer does: `status.artifact` plus a Ready condition. Pass
 * `ready: false` (or no artifact) to model a source that is not ready yet.
 */
export async function publishExternalArtifact(
  client: KubeClient,
  namespace: string,
  name: string,
  artifact: PublishedArtifact | undefined,
  options: { ready?: boolean; sourceRef?: { apiVersion?: string; kind: string; name: string; namespace?: string } } = {},
): Promise<KubeObject> {
  const ref = { apiVersion: SOURCE_API_VERSION, kind: "ExternalArtifact", namespace, name };
  const existing = await client.get(ref);
  const spec = options.sourceRef ? { sourceRef: options.sourceRef } : {};
  const obj = existing ?? (await client.create({ ...ref, metadata: { name, namespace }, spec } as KubeObject));
  const ready = options.ready ?? artifact !== undefined;
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const status: Record<string, unknown> = {
    observedGeneration: obj.metadata.generation,
    conditions: [
      {
        type: "Ready",
        status: ready ? "True" : "False",
        reason: ready ? "Succeeded" : "Progressing",
        message: ready ? `stored artifact for revision '${artifact?.revision}'` : "not ready yet",
        lastTransitionTime: now,
        observedGeneration: obj.metadata.generation,
      },
    ],
  };
  if (artifact) {
    status.artifact = {
      path: `externalartifact/${namespace}/${name}/${artifact.digest.slice(7, 23)}.tar.gz`,
      url: artifact.url,
      revision: artifact.revision,
      digest: artifact.digest,
      lastUpdateTime: now,
      size: artifact.size,
    };
  }
  return client.patch(ref, { status }, "merge", { subresource: "status" });
}

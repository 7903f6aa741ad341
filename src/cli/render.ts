import type { KubeObject, Stage, StageSet } from "../api/types.js";
import { kubeVarSource } from "../build/kube-var-source.js";
import { decryptionFor } from "../build/decrypt.js";
import { buildStage } from "../build/index.js";
import { defaultKmsProviders } from "../sops/kms/index.js";
import type { DecryptionKeys } from "../sops/types.js";
import { fetchAndBuild } from "../controller/stage-run.js";
import type { KubeClient } from "../kube/client.js";
import { KubeConfigError } from "../kube/errors.js";
import { ArtifactCache } from "../source/artifact-cache.js";
import { resolveSource } from "../source/resolve.js";
import { ClusterSourceReader } from "./cluster-source-reader.js";
import type { Connection } from "./connection.js";
import { LocalVarObjects, offlineAwareVarSource } from "./local-vars.js";
import { assertDirectory, sourceDirFor, type SourceDirs } from "./source-dirs.js";

export interface RenderRequest {
  stageSet: StageSet;
  stages: readonly { stage: Stage; index: number }[];
  sourceDirs: SourceDirs;
  connection: Connection;
  /** The identity `postBuild.substituteFrom` reads ConfigMaps and Secrets as; asked for only when a stage uses it. */
  substitutionClient: () => Promise<KubeClient>;
  /** ConfigMaps and Secrets given with --substitute-from-file, read before the cluster. */
  localVars?: LocalVarObjects;
  /** SOPS keys given with --decryption-key-file / SOPS_AGE_KEY_FILE; without them `spec.decryption.secretRef` is read from the cluster. */
  decryptionKeys?: DecryptionKeys;
}

export interface RenderedStage {
  stage: Stage;
  index: number;
  /** What the build produced, before the apply places and labels it. */
  objects: KubeObject[];
  /** The artifact revision, when fetched from the cluster. */
  revision?: string;
}

/**
 * The controller's resolve → fetch → build for each requested stage, or
 * just the build on a local tree for stages with a `--source-dir`.
 */
export async function renderStages(request: RenderRequest): Promise<RenderedStage[]> {
  const { stageSet, sourceDirs } = request;
  const namespace = stageSet.metadata.namespace ?? "";
  const varSource = offlineAwareVarSource(kubeVarSource(request.substitutionClient), request.localVars ?? new LocalVarObjects());
  const signal = new AbortController().signal;
  const decryption = decryptionFor(stageSet.spec.decryption, {
    ...(request.decryptionKeys ? { keys: request.decryptionKeys } : {}),
    kms: defaultKmsProviders(),
  });
  const decrypt = decryption ? { decryption } : {};
  let artifacts: ArtifactCache | undefined;
  let reader: ClusterSourceReader | undefined;
  const rendered: RenderedStage[] = [];
  try {
    for (const { stage, index } of request.stages) {
      const dir = sourceDirFor(sourceDirs, stage.name);
      if (dir !== undefined) {
        await assertDirectory(dir, stage.name);
        const objects = await buildStage({ root: dir, stageIndex: index, stage, namespace, varSource, signal, ...decrypt });
        rendered.push({ stage, index, objects });
        continue;
      }
      reader ??= new ClusterSourceReader(clusterFor(request.connection, stage.name));
      artifacts ??= new ArtifactCache();
      const source = await resolveSource(
        { sourceRef: stage.sourceRef, namespace, stage: stage.name, field: `spec.stages[${index}].sourceRef` },
        reader,
      );
      const objects = await fetchAndBuild({ artifacts, source, stage, index, stageSet, varSource, signal, ...decrypt });
      rendered.push({ stage, index, objects, revision: source.artifact.revision });
    }
  } finally {
    await artifacts?.close();
  }
  return rendered;
}

function clusterFor(connection: Connection, stage: string): KubeClient {
  try {
    return connection.client();
  } catch (err) {
    if (!(err instanceof KubeConfigError)) throw err;
    throw new KubeConfigError(
      `stage "${stage}" has no --source-dir, so its artifact is fetched from the cluster, but ${err.message}. ` +
        `To build offline, pass --source-dir ${stage}=PATH (or a bare --source-dir PATH for every stage)`,
      { cause: err },
    );
  }
}


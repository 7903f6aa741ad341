import { readdir, realpath } from "node:fs/promises";
import { join } from "node:path";
import type { KubeObject, Patch, Stage } from "../api/types.js";
import { BuildError } from "../errors.js";
import { readConfinedFile } from "./confine.js";
import { kustomizationFileIn, listGeneratedResources, renderGeneratedKustomization } from "./kustomization.js";
import { KustomizeFailure, runKustomize, type KustomizeOptions, type RenderedFormat } from "./kustomize.js";
import { flattenLists, isKubeObject, parseRenderedJsonLine, splitDocuments, splitJsonLines } from "./manifests.js";
import { addPatchesToKustomization, patchField, validatePatches } from "./patches.js";
import { decryptTree, type StageDecryption } from "./decrypt.js";
import { newExpansionBudget } from "./envsubst.js";
import { resolveVariables, substituteDocuments, type VarSource } from "./substitute.js";
import { normalizeStagePath, resolveStageDirectory } from "./workspace.js";

export type { VarSource } from "./substitute.js";

export interface BuildStageParams {
  /** The unpacked artifact. Read only; it may be shared by stages and cached. */
  root: string;
  stageIndex: number;
  stage: Stage;
  /** The StageSet's namespace: where substituteFrom ConfigMaps/Secrets are read. */
  namespace: string;
  /** Required when the stage uses postBuild.substituteFrom. */
  varSource?: VarSource;
  signal?: AbortSignal;
  /** Fail on `${var}` without a value or default (Flux's StrictPostBuildSubstitutions). Default false. */
  strictSubstitution?: boolean;
  kustomize?: Omit<KustomizeOptions, "signal">;
  /** Unused: builds no longer need a workspace (the stage's kustomization goes to kbuild on stdin). */
  workDir?: string;
  /** `spec.decryption`: SOPS files of the artifact are decrypted in memory before the build. */
  decryption?: StageDecryption;
}

/**
 * Renders a stage the way kustomize-controller renders a Kustomization:
 * kustomize on the stage's path (a kustomization generated when there is
 * none), the stage's patches added to that kustomization, then postBuild
 * substitution on each object. Namespaces are left as rendered. Every failure
 * is a BuildError naming the path, patch, file or variable at fault.
 */
export async function buildStage(params: BuildStageParams): Promise<KubeObject[]> {
  const { root, stageIndex, stage } = params;
  const relative = normalizeStagePath(stage.path, stageIndex);
  const stageDir = await resolveStageDirectory(root, relative, stageIndex, stage.path);
  const patches = stage.patches ?? [];
  validatePatches(patches, stageIndex);

  // The build runs in kbuild, on a filesystem confined to the artifact (see
  // kustomize.ts); the stage's kustomization, generated or with the stage's
  // patches added, is handed to it rather than written into the artifact.
  const realRoot = await realpath(root);
  const kustomization = await readOrGenerateKustomization(realRoot, stageDir, stageIndex);
  const scrub = pathScrubber([root, realRoot]);
  // SOPS files are decrypted in memory and handed to kbuild with the kustomization: plaintext never touches disk.
  const files = params.decryption
    ? await decryptTree(realRoot, {
        stageIndex,
        stageName: stage.name,
        namespace: params.namespace,
        decryption: params.decryption,
        varSource: params.varSource ?? noVarSource,
        ...(params.signal ? { signal: params.signal } : {}),
      })
    : undefined;
  // Substitution works on each object's YAML, as kustomize-controller's does;
  // without it the objects come as JSON, the same values without the YAML
  // round trip (kbuild renders YAML from that JSON).
  const output: RenderedFormat = stage.postBuild ? "yaml" : "json-lines";
  const build = async (patchCount: number): Promise<string> => {
    const text = patchCount === 0 ? kustomization.text : addPatchesToKustomization(kustomization.text, patches.slice(0, patchCount), kustomization.name);
    return runKustomize(realRoot, stageDir, { ...params.kustomize, signal: params.signal, kustomization: { name: kustomization.name, text }, output, ...(files ? { files } : {}) });
  };
  let rendered: string;
  try {
    rendered = await build(patches.length);
  } catch (err) {
    if (!(err instanceof KustomizeFailure)) throw err;
    throw await explainFailure(err, { build, patches, stageIndex, shownPath: stage.path ?? "./", scrub });
  }

  let values: unknown[];
  if (!stage.postBuild) {
    values = await eachDocument(splitJsonLines(rendered), (line) => [parseRenderedJsonLine(line, stageIndex)]);
  } else {
    if (!params.varSource && stage.postBuild.substituteFrom?.length) {
      throw new Error("buildStage: postBuild.substituteFrom needs a varSource");
    }
    const vars = await resolveVariables({
      postBuild: stage.postBuild,
      namespace: params.namespace,
      stageIndex,
      varSource: params.varSource ?? noVarSource,
    });
    const budget = newExpansionBudget();
    values = await eachDocument(splitDocuments(rendered), (source) => substituteDocuments([source], vars, { stageIndex, strict: params.strictSubstitution, budget }));
  }
  return toObjects(flattenLists(values), stageIndex);
}

/** How long document work may hold the event loop before it lets other work (probes, leases, reconciles) run. */
const EVENT_LOOP_SLICE_MS = 20;

/**
 * Maps every document through `work`, yielding to the event loop whenever a
 * slice of EVENT_LOOP_SLICE_MS has passed: parsing and substitution are
 * synchronous, and a stage of many documents must not stall the process.
 */
async function eachDocument(sources: readonly string[], work: (source: string) => unknown[]): Promise<unknown[]> {
  const values: unknown[] = [];
  let sliceStart = performance.now();
  for (const source of sources) {
    values.push(...work(source));
    if (performance.now() - sliceStart > EVENT_LOOP_SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
  return values;
}

const noVarSource: VarSource = {
  getConfigMap: () => Promise.resolve(undefined),
  getSecret: () => Promise.resolve(undefined),
};

interface KustomizationFile {
  /** Its file name in the stage directory (kbuild overlays it there). */
  name: string;
  text: string;
}

async function readOrGenerateKustomization(realRoot: string, stageDir: string, stageIndex: number): Promise<KustomizationFile> {
  const existing = kustomizationFileIn(await readdir(stageDir, { withFileTypes: true }));
  if (existing) return { name: existing, text: await readConfinedFile(realRoot, join(stageDir, existing), stageIndex) };
  return { name: "kustomization.yaml", text: renderGeneratedKustomization(await listGeneratedResources(stageDir)) };
}

/** Turns artifact paths in the build's messages into artifact-relative ones. */
function pathScrubber(roots: string[]): (message: string) => string {
  const prefixes = [...new Set(roots)].sort((a, b) => b.length - a.length);
  return (message) => {
    let out = message;
    for (const prefix of prefixes) out = out.replaceAll(`${prefix}/`, "").replaceAll(prefix, ".");
    return out;
  };
}

/**
 * A failed build with patches is retried with fewer patches to find the first
 * one kustomize cannot apply (a binary search: a few extra builds, only on
 * failure), so the message names `patches[j]` rather than the whole stage.
 */
async function explainFailure(
  failure: KustomizeFailure,
  ctx: {
    build: (patchCount: number) => Promise<string>;
    patches: readonly Patch[];
    stageIndex: number;
    shownPath: string;
    scrub: (message: string) => string;
  },
): Promise<BuildError> {
  const { build, patches, stageIndex, shownPath, scrub } = ctx;
  const buildFailed = (message: string) =>
    new BuildError(`spec.stages[${stageIndex}]: kustomize build of "${shownPath}" failed: ${scrub(message)}`);
  if (patches.length === 0 || failure.stopped) return buildFailed(failure.message);

  let bad = patches.length;
  let badMessage = failure.message;
  const tryBuild = async (count: number): Promise<string | undefined> => {
    try {
      await build(count);
      return undefined;
    } catch (err) {
      if (err instanceof KustomizeFailure) return err.message;
      throw err;
    }
  };
  const withoutPatches = await tryBuild(0);
  if (withoutPatches !== undefined) return buildFailed(withoutPatches);
  // Invariant: the build with `good` patches succeeds, with `bad` patches it fails.
  let good = 0;
  while (bad - good > 1) {
    const mid = Math.floor((good + bad) / 2);
    const message = await tryBuild(mid);
    if (message === undefined) good = mid;
    else {
      bad = mid;
      badMessage = message;
    }
  }
  return new BuildError(`${patchField(stageIndex, bad - 1)}: the patch cannot be applied: ${scrub(badMessage)}`);
}

function toObjects(values: unknown[], stageIndex: number): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const value of values) {
    if (value === null || value === undefined) continue;
    if (!isKubeObject(value) || typeof value.apiVersion !== "string" || typeof value.metadata !== "object" || value.metadata === null) {
      throw new BuildError(`spec.stages[${stageIndex}]: the build produced a document that is not a Kubernetes object (it needs apiVersion, kind and metadata)`);
    }
    objects.push(value);
  }
  return objects;
}

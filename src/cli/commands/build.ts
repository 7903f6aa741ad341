import type { StageSet } from "../../api/types.js";
import type { TenantClient } from "../../controller/tenant.js";
import { readKeyFiles, type DecryptionKeys } from "../../sops/index.js";
import { UsageError } from "../errors.js";
import { loadLocalVarObjects } from "../local-vars.js";
import { renderStages, type RenderedStage } from "../render.js";
import { assertStagesKnown, parseSourceDirs } from "../source-dirs.js";
import { describeStageSet, loadStageSet, selectStages } from "../stageset-input.js";
import { targetClient } from "../target.js";
import { toYamlStream } from "../yaml-output.js";
import type { CommandContext } from "./context.js";

/** Flags shared by `build` and `diff`. */
export interface RenderFlags {
  filename?: string;
  stage: string[];
  sourceDir: string[];
  showSecrets: boolean;
  asTenant: boolean;
  /** --substitute-from-file: ConfigMap/Secret manifests that postBuild.substituteFrom reads before the cluster. */
  substituteFromFile: string[];
  /** --decryption-key-file: age key files and armored PGP private keys for SOPS files (besides SOPS_AGE_KEY_FILE). */
  decryptionKeyFile?: string[];
}

/** `build NAME | -f FILE`: the rendered manifests of the selected stages as one YAML stream. */
export async function runBuild(ctx: CommandContext, name: string | undefined, flags: RenderFlags): Promise<number> {
  const { rendered } = await loadAndRender(ctx, "build", name, flags, (stageSet) => substitutionAs(ctx, stageSet, flags.asTenant));
  ctx.io.out(toYamlStream(rendered.flatMap((stage) => stage.objects), flags.showSecrets));
  return 0;
}

/**
 * Loads the StageSet (cluster or file), checks the stage and source-dir
 * selections against it and renders the selected stages.
 * `substitution` gives the client `postBuild.substituteFrom` reads with.
 */
export async function loadAndRender(
  ctx: CommandContext,
  command: "build" | "diff",
  name: string | undefined,
  flags: RenderFlags,
  substitution: (stageSet: StageSet) => { client(): Promise<TenantClient["client"]>; close(): void },
): Promise<{ stageSet: StageSet; rendered: RenderedStage[] }> {
  const sourceDirs = parseSourceDirs(flags.sourceDir);
  const usage = `${ctx.program} ${command} NAME (a StageSet in the cluster) or ${ctx.program} ${command} -f FILE (a manifest)`;
  const stageSet = await loadStageSet({ name, file: flags.filename }, ctx.connection, usage, ctx.program);
  assertStagesKnown(sourceDirs, stageSet.spec.stages.map((s) => s.name));
  if (flags.asTenant && !stageSet.spec.serviceAccountName) {
    throw new UsageError(`--as-tenant: StageSet ${describeStageSet(stageSet)} sets no spec.serviceAccountName to impersonate; drop --as-tenant`);
  }
  const stages = selectStages(stageSet, flags.stage);
  const localVars = await loadLocalVarObjects(flags.substituteFromFile ?? []);
  const decryptionKeys = await decryptionKeysOf(flags.decryptionKeyFile ?? []);
  const identity = substitution(stageSet);
  try {
    const rendered = await renderStages({
      stageSet,
      stages,
      sourceDirs,
      connection: ctx.connection,
      substitutionClient: () => identity.client(),
      localVars,
      ...(decryptionKeys ? { decryptionKeys } : {}),
    });
    return { stageSet, rendered };
  } finally {
    identity.close();
  }
}

/** The tenant identity, connected only if a stage reads substitution variables. */
export function substitutionAs(ctx: CommandContext, stageSet: StageSet, asTenant: boolean): { client(): Promise<TenantClient["client"]>; close(): void } {
  let tenant: Promise<TenantClient> | undefined;
  return {
    client: async () => {
      tenant ??= targetClient(ctx.connection.client(), stageSet, asTenant);
      return (await tenant).client;
    },
    close: () => void tenant?.then((t) => t.close(), () => undefined),
  };
}

/**
 * The SOPS keys given on the command line: every `--decryption-key-file`,
 * then `SOPS_AGE_KEY_FILE` (as sops reads it). Undefined when none is given,
 * so the StageSet's `spec.decryption.secretRef` is read from the cluster.
 */
async function decryptionKeysOf(files: readonly string[]): Promise<DecryptionKeys | undefined> {
  const all = [...files, ...(process.env.SOPS_AGE_KEY_FILE ? [process.env.SOPS_AGE_KEY_FILE] : [])];
  if (all.length === 0) return undefined;
  try {
    return await readKeyFiles(all);
  } catch (err) {
    throw new UsageError(`--decryption-key-file: ${err instanceof Error ? err.message : String(err)}`);
  }
}

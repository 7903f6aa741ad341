import { API_VERSION, STAGESET_KIND, type StageSet, type StageStatus } from "../../api/types.js";
import type { InventoryMode } from "../../config/flags.js";
import type { StageChanges } from "../changes.js";
import { clientSideChanges } from "../client-diff.js";
import { painter, useColor, type ColorMode } from "../color.js";
import { renderDiffReport } from "../diff-report.js";
import { EarlierStageCrds } from "../earlier-stage-kinds.js";
import { ExitCode } from "../errors.js";
import { serverSideChanges } from "../server-diff.js";
import { targetClient } from "../target.js";
import { StageFailedError } from "../../errors.js";
import { KindNotFoundError } from "../../kube/errors.js";
import type { RenderedStage } from "../render.js";
import { loadAndRender, type RenderFlags } from "./build.js";
import type { CommandContext } from "./context.js";

export interface DiffFlags extends RenderFlags {
  serverSide: boolean;
  showUnchanged: boolean;
  prune: boolean;
  color: ColorMode;
  exitCode: boolean;
  inventoryMode: InventoryMode;
}

/**
 * `diff NAME | -f FILE`: what a reconcile would change, against the live
 * cluster. Exits 1 when anything would change (unless `--exit-code=false`).
 * Objects whose kind a CRD of an earlier stage installs, on a cluster that
 * does not serve it yet (a first install), are shown as created, as rendered.
 */
export async function runDiff(ctx: CommandContext, name: string | undefined, flags: DiffFlags): Promise<number> {
  let target: Awaited<ReturnType<typeof targetClient>> | undefined;
  const connect = async (stageSet: StageSet) => {
    target ??= await targetClient(ctx.connection.client(), stageSet, flags.asTenant);
    return target;
  };
  try {
    const { stageSet, rendered } = await loadAndRender(ctx, "diff", name, flags, (stageSet) => ({
      client: async () => (await connect(stageSet)).client,
      close: () => undefined,
    }));
    const { client } = await connect(stageSet);
    // StageInventory objects live beside the StageSet, even when the stages apply to a remote cluster.
    const inventory = ctx.connection.client();
    const changes: StageChanges[] = [];
    // On a first install the kinds earlier stages' CRDs define are not served yet: their objects show as created.
    const earlier = new EarlierStageCrds();
    for (const stage of rendered) {
      try {
        changes.push(
          flags.serverSide
            ? await serverSideChanges(client, inventory, stageSet, stage, flags.inventoryMode, earlier)
            : await clientSideChanges(client, inventory, stageSet, stage, flags.inventoryMode, earlier),
        );
      } catch (err) {
        throw withSkippedStages(err, stageSet, stage.index, rendered);
      }
      earlier.addStage(stage.stage.name, stage.objects);
    }
    const report = renderDiffReport(changes, {
      showSecrets: flags.showSecrets,
      showUnchanged: flags.showUnchanged,
      prune: flags.prune,
      paint: painter(useColor(flags.color, ctx.io.stdoutIsTTY, ctx.io.env)),
      stageStatus: await stageStatuses(ctx, stageSet, flags.filename !== undefined),
    });
    ctx.io.out(report.text);
    return report.changed && flags.exitCode ? ExitCode.changes : ExitCode.ok;
  } finally {
    target?.close();
  }
}

/**
 * A kind the API server does not serve, in a diff whose `--stage` left out
 * earlier stages: those may install its CRD, so say so (the same error type
 * and cause, a longer message). Any other error is returned unchanged.
 */
function withSkippedStages(err: unknown, stageSet: StageSet, index: number, rendered: readonly RenderedStage[]): unknown {
  if (!(err instanceof StageFailedError) || !(err.cause instanceof KindNotFoundError)) return err;
  const renderedIndexes = new Set(rendered.map((r) => r.index));
  const skipped = stageSet.spec.stages.slice(0, index).filter((_, i) => !renderedIndexes.has(i)).map((s) => `"${s.name}"`);
  if (skipped.length === 0) return err;
  const message =
    `${err.message}. --stage left out the earlier stage(s) ${skipped.join(", ")}, whose CustomResourceDefinitions ` +
    `were therefore not considered: add them with --stage, or drop --stage, to preview a first install`;
  return new StageFailedError(message, { cause: err.cause });
}

/**
 * Per stage, what the controller last recorded: it tells whether a stage
 * would roll out a new revision and which actions already ran. A StageSet
 * from a file takes the status of its live counterpart, if there is one.
 */
async function stageStatuses(ctx: CommandContext, stageSet: StageSet, fromFile: boolean): Promise<Map<string, StageStatus>> {
  let status = stageSet.status;
  if (fromFile) {
    const live = await ctx.connection.client().get<StageSet>({
      apiVersion: API_VERSION,
      kind: STAGESET_KIND,
      namespace: stageSet.metadata.namespace ?? "",
      name: stageSet.metadata.name ?? "",
    });
    status = live?.status;
  }
  return new Map((status?.stages ?? []).map((s) => [s.name, s]));
}

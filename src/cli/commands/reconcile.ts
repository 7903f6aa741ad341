import { parseDuration } from "../../api/duration.js";
import { Annotations, API_VERSION, STAGESET_KIND, type Stage, type StageSet } from "../../api/types.js";
import { WAITING_REASONS, type Reason } from "../../errors.js";
import type { KubeClient, ObjectRef } from "../../kube/client.js";
import { isNotFound } from "../../kube/errors.js";
import { DIRECT_SOURCE_KINDS, EXTERNAL_ARTIFACT_KIND, FLUX_SOURCE_API_VERSION } from "../../source/resolve.js";
import { UsageError } from "../errors.js";
import { StageSetNotFoundError, describeStageSet, selectStages } from "../stageset-input.js";
import { readyCondition } from "../status-view.js";
import { systemClock } from "../../util/clock.js";
import { pollUntil } from "../../util/poll.js";
import type { CommandContext } from "./context.js";

/**
 * Asks the controller to run a StageSet once while it is suspended. Not part
 * of the contract's annotation table yet: the controller honours it once it
 * implements `reconcile --force`.
 */
export const FORCE_RECONCILE_ANNOTATION = Annotations.forceReconcile;

export const DEFAULT_WAIT_TIMEOUT = "5m";
const POLL_INTERVAL_MS = 500;

export interface ReconcileFlags {
  stage?: string;
  withSource: boolean;
  updateNow: boolean;
  force: boolean;
  wait: boolean;
  timeout: string;
}

/** The StageSet's run ended in a failure, or did not end in time (exit 3). */
export class ReconcileWaitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReconcileWaitError";
  }
}

/**
 * `reconcile NAME`: stamps `reconcile.fluxcd.io/requestedAt` (and the
 * annotations the flags ask for) and, with `--wait`, follows the run until
 * the controller has handled that request.
 */
export async function runReconcile(ctx: CommandContext, name: string, flags: ReconcileFlags): Promise<number> {
  const timeoutMs = parseTimeout(flags.timeout);
  const client = ctx.connection.client();
  const namespace = ctx.connection.namespace;
  const ref: ObjectRef = { apiVersion: API_VERSION, kind: STAGESET_KIND, namespace, name };
  const stageSet = await client.get<StageSet>(ref);
  if (!stageSet) throw new StageSetNotFoundError(namespace, name, ctx.program);
  const stages = selectStages(stageSet, flags.stage ? [flags.stage] : []);
  if (stageSet.spec.suspend && !flags.force) {
    throw new ReconcileWaitError(
      `StageSet ${describeStageSet(stageSet)} is suspended (spec.suspend: true), so the controller would not run it; ` +
        `pass --force to run it once while suspended, or resume it by setting spec.suspend to false`,
    );
  }

  const token = new Date().toISOString();
  if (flags.withSource) {
    for (const { stage } of stages) await requestSourceReconcile(ctx, client, stageSet, stage, token);
  }
  const annotations: Record<string, string> = { [Annotations.requestedAt]: token };
  // The value carries the token so that asking twice for the same stage is two requests.
  if (flags.stage) annotations[Annotations.reconcileStage] = `${flags.stage}@${token}`;
  if (flags.updateNow) annotations[Annotations.updateNow] = token;
  if (flags.force) annotations[FORCE_RECONCILE_ANNOTATION] = token;
  await client.patch(ref, { metadata: { annotations } }, "merge");
  ctx.io.out(`reconcile requested for StageSet ${namespace}/${name} (${Annotations.requestedAt}=${token})\n`);
  if (!flags.wait) return 0;
  await waitUntilHandled(ctx, client, ref, token, timeoutMs, flags.timeout);
  return 0;
}

function parseTimeout(value: string): number {
  try {
    return parseDuration(value, "--timeout");
  } catch {
    throw new UsageError(`--timeout ${value}: not a duration; use e.g. --timeout=5m, --timeout=90s or --timeout=1h`);
  }
}

/** Stamps the stage's source (as the sourceRef names it) so Flux reconciles it now. */
async function requestSourceReconcile(ctx: CommandContext, client: KubeClient, stageSet: StageSet, stage: Stage, token: string): Promise<void> {
  const kind = stage.sourceRef.kind || EXTERNAL_ARTIFACT_KIND;
  const apiVersion = stage.sourceRef.apiVersion || (DIRECT_SOURCE_KINDS.includes(kind) ? FLUX_SOURCE_API_VERSION : undefined);
  if (!apiVersion) throw new UsageError(`--with-source: stage "${stage.name}" names producer kind ${kind} without sourceRef.apiVersion; fix the StageSet first`);
  const ref: ObjectRef = { apiVersion, kind, namespace: stage.sourceRef.namespace || stageSet.metadata.namespace || "", name: stage.sourceRef.name };
  try {
    await client.patch(ref, { metadata: { annotations: { [Annotations.requestedAt]: token } } }, "merge");
  } catch (err) {
    if (isNotFound(err)) throw new ReconcileWaitError(`--with-source: the source of stage "${stage.name}", ${kind} ${ref.namespace}/${ref.name}, does not exist`);
    throw err;
  }
  ctx.io.out(`reconcile requested for ${kind} ${ref.namespace}/${ref.name} (source of stage "${stage.name}")\n`);
}

/**
 * Polls until status.lastHandledReconcileAt echoes `token` and the run has
 * an outcome: Ready True (returns), or a failure that is not merely waiting
 * (throws with the Ready message). Prints each stage's phase as it changes.
 */
async function waitUntilHandled(ctx: CommandContext, client: KubeClient, ref: ObjectRef, token: string, timeoutMs: number, timeoutText: string): Promise<void> {
  const shown = new Map<string, string>();
  let last: StageSet | undefined;
  await pollUntil(
    systemClock,
    {
      timeoutMs,
      intervalMs: POLL_INTERVAL_MS,
      onTimeout: () => {
        const ready = last && readyCondition(last);
        const state = last?.status?.lastHandledReconcileAt === token
          ? `it is still ${ready ? `${ready.status === "False" ? "not Ready" : "in progress"} (${ready.reason}): ${ready.message}` : "without a Ready condition"}`
          : "the controller has not picked the request up (is it running and watching this namespace?)";
        return new ReconcileWaitError(`timed out after ${timeoutText} waiting for StageSet ${ref.namespace}/${ref.name}: ${state}`);
      },
    },
    async () => {
      last = await client.get<StageSet>(ref);
      if (!last) throw new ReconcileWaitError(`StageSet ${ref.namespace}/${ref.name} was deleted while waiting`);
      if (last.status?.lastHandledReconcileAt !== token) return undefined;
      printStageProgress(ctx, last, shown);
      const ready = readyCondition(last);
      const current = last.status.observedGeneration === last.metadata.generation;
      if (current && ready?.status === "True") {
        ctx.io.out(`StageSet ${ref.namespace}/${ref.name} is Ready: ${ready.message}\n`);
        return true;
      }
      if (current && ready?.status === "False" && !WAITING_REASONS.has(ready.reason as Reason)) {
        throw new ReconcileWaitError(`StageSet ${ref.namespace}/${ref.name} is not Ready (${ready.reason}): ${ready.message}`);
      }
      return undefined;
    },
  );
}

function printStageProgress(ctx: CommandContext, stageSet: StageSet, shown: Map<string, string>): void {
  for (const stage of stageSet.status?.stages ?? []) {
    const line = `stage "${stage.name}": ${stage.phase}${stage.message ? ` (${stage.message})` : ""}`;
    if (shown.get(stage.name) === line) continue;
    shown.set(stage.name, line);
    ctx.io.out(`  ${line}\n`);
  }
}

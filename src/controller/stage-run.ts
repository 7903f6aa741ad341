import type { KubeObject, Stage, StageSet, StageStatus } from "../api/types.js";
import { ChangeSet } from "../apply/change-set.js";
import type { ApplyResult } from "../apply/engine.js";
import type { AppliedStateMemo } from "../apply/drift.js";
import { labelSelector, managedLabels, objectId, placeObject } from "../apply/objects.js";
import type { DroppedEntry } from "../apply/prune.js";
import { readStageInventory, type StageInventoryState } from "../apply/inventory.js";
import { syncStage } from "../apply/stage.js";
import type { StageDecryption } from "../build/decrypt.js";
import { buildStage, type VarSource } from "../build/index.js";
import type { InventoryMode } from "../config/flags.js";
import { describeRef, jobsWithTTL, resolveStageTimeout, verifyStageHealth, type ObjectRef as HealthRef, type StageHealth } from "../health/index.js";
import type { KubeClient } from "../kube/client.js";
import type { ArtifactCache } from "../source/artifact-cache.js";
import type { ResolvedSource } from "../source/resolve.js";
import type { Logger } from "../util/log.js";
import type { ActionLedger } from "../actions/ledger.js";
import { runActionList, runOnFailure, type ActionFailedError, type ActionHooks } from "../actions/runner.js";
import type { ActionEnv, ActionExecutor } from "../actions/types.js";
import type { Action } from "../api/types.js";
import { errorMessage, StageSetError } from "../errors.js";
import type { BuildCache } from "./build-cache.js";
import { fetchLiveObjects, firstFromObserved } from "./live-objects.js";

/** Everything one stage's run needs, in plain terms. */
export interface StageRunContext {
  stageSet: StageSet;
  stage: Stage;
  index: number;
  source: ResolvedSource;
  /** Applies, prunes and reads health as the tenant (possibly in a remote cluster). */
  tenant: KubeClient;
  /** Reads and writes the StageInventory objects: the controller's bookkeeping, kept beside the StageSet. */
  inventory: KubeClient;
  artifacts: ArtifactCache;
  varSource: VarSource;
  inventoryMode: InventoryMode;
  inventoryShardCap: number;
  memo: AppliedStateMemo;
  builds?: BuildCache;
  log: Logger;
  signal: AbortSignal;
  /** Aborts the verify wait (shutdown, or newer input: a SupersededError); default `signal`. */
  waitSignal?: AbortSignal;
  /** Records every write of the stage as it happens (kept by the caller when the stage throws). */
  changes?: ChangeSet;
  /** Publishes the stage's phase as it moves (Applying, Pruning, Verifying). */
  onPhase(phase: StageStatus["phase"], message?: string): Promise<void>;
  healthPollIntervalMs: number;
  /** Ids of objects later stages of this StageSet render now: moving an object to a later stage must not prune it. */
  laterStageIds?: () => Promise<ReadonlySet<string>>;
  /** The stage's pre/post/onFailure actions: absent when the stage has none. */
  actions?: StageActionsContext;
  /** Receives the milliseconds each phase took once the stage ends, failed or not (see StageTimings). */
  onTimings?(durationsMs: Record<StagePhaseName, number>): void;
  /** `spec.decryption`, resolved: absent when the StageSet asks for none. */
  decryption?: StageDecryption;
}

/** What running a stage's actions needs besides the stage itself. */
export interface StageActionsContext {
  ledger: ActionLedger;
  /** The environment shared by the stage's actions (list and timeout are per action). */
  env: Omit<ActionEnv, "list" | "timeoutMs">;
  executorFor(action: Action): ActionExecutor;
  hooks?: ActionHooks;
  /** Called for each onFailure action that failed in turn (an `OnFailureAction` Warning event). */
  onFailureActionFailed?(failure: ActionFailedError): void;
}

export interface StageRunResult {
  apply: ApplyResult;
  changes: ChangeSet;
  pruned: number;
  /** Inventory entries given up because their kind is no longer served at all (each needs a Warning event). */
  dropped: DroppedEntry[];
  entriesCount: number;
  shards: number;
}

/**
 * One stage, in the order the documentation describes it: fetch the
 * artifact, build, apply, verify, then prune what left (CONTRACT
 * "Decisions": prune after verify), all recorded in the stage's inventory.
 * Objects a conflict policy skipped (KeepExisting) are not waited on. Each
 * step throws the typed error whose reason the StageSet will show; nothing
 * applied before a failure is undone, and `ctx.changes` keeps what was done.
 */
export async function runStage(ctx: StageRunContext): Promise<StageRunResult> {
  const timings = new StageTimings();
  let objects: KubeObject[] = [];
  // Read while the stage builds, off its critical path; a failed build leaves the answer unread.
  const previous = readStageInventory(ctx.inventory, refOfStageSet(ctx.stageSet), ctx.stage.name);
  previous.catch(() => undefined);
  try {
    objects = await fetchAndBuild(ctx);
    timings.mark("build");
    return await runBuiltStage(ctx, objects, timings, previous);
  } finally {
    // A failed phase is not marked: the phases before it are still reported.
    const durationsMs = timings.durations();
    ctx.log.debug({ stage: ctx.stage.name, objects: objects.length, durationsMs }, "stage timings");
    ctx.onTimings?.(durationsMs);
  }
}

/**
 * Where a stage's time went (the debug log's "stage timings" and the
 * stage phase histogram): each phase's milliseconds, measured from the end
 * of the one before it. Phases, in order: build (fetch and render), pre
 * (actions), apply (with the inventory write), verify, post (actions),
 * prune; a phase the stage did not reach is absent.
 */
export type StagePhaseName = "build" | "pre" | "apply" | "verify" | "post" | "prune";

class StageTimings {
  readonly #marks: Array<[StagePhaseName, number]> = [];
  #last = performance.now();

  mark(phase: StagePhaseName): void {
    const now = performance.now();
    this.#marks.push([phase, Math.round(now - this.#last)]);
    this.#last = now;
  }

  durations(): Record<StagePhaseName, number> {
    return Object.fromEntries(this.#marks) as Record<StagePhaseName, number>;
  }
}

async function runBuiltStage(ctx: StageRunContext, objects: KubeObject[], timings: StageTimings, previous: Promise<StageInventoryState>): Promise<StageRunResult> {
  if (!ctx.actions) return syncAndVerify(ctx, objects, timings, previous);
  const actions = ctx.actions;
  const list = (name: "pre" | "post") =>
    runActionList({ list: name, actions: ctx.stage.actions?.[name] ?? [], env: actions.env, ledger: actions.ledger, executorFor: actions.executorFor, ...(actions.hooks ? { hooks: actions.hooks } : {}) });
  try {
    // pre: before anything of the stage is applied; a failure applies nothing.
    await list("pre");
    timings.mark("pre");
    // post: once the stage is verified, before what left it is pruned; the stage is Ready only when they all succeeded.
    return await syncAndVerify(ctx, objects, timings, previous, () => list("post"));
  } catch (err) {
    if (ctx.signal.aborted || (ctx.waitSignal?.aborted ?? false)) throw err;
    throw await withOnFailure(ctx, actions, err);
  }
}

/**
 * Runs the stage's onFailure actions best-effort after `err`, then returns
 * the failure to throw: `err` itself, its message extended with the
 * onFailure actions that failed too.
 */
async function withOnFailure(ctx: StageRunContext, actions: StageActionsContext, err: unknown): Promise<unknown> {
  const onFailure = ctx.stage.actions?.onFailure ?? [];
  if (onFailure.length === 0) return err;
  const failures = await runOnFailure({ actions: onFailure, env: actions.env, ledger: actions.ledger, executorFor: actions.executorFor, ...(actions.hooks ? { hooks: actions.hooks } : {}) });
  for (const failure of failures) actions.onFailureActionFailed?.(failure);
  if (failures.length === 0) return err;
  const also = `; onFailure also failed: ${failures.map((f) => `"${f.action}" (${f.cause instanceof Error ? errorMessage(f.cause) : ""})`).join(", ")}`;
  if (err instanceof StageSetError) return new StageSetError(err.reason, `${err.message}${also}`, { cause: err, terminal: err.terminal });
  return new Error(`${errorMessage(err)}${also}`, { cause: err });
}

async function syncAndVerify(
  ctx: StageRunContext,
  objects: KubeObject[],
  timings: StageTimings,
  previous: Promise<StageInventoryState>,
  afterVerify?: () => Promise<void>,
): Promise<StageRunResult> {
  publishProgress(ctx, "Applying");
  const changes = ctx.changes ?? new ChangeSet();
  const synced = await syncStage({
    client: ctx.tenant,
    inventoryClient: ctx.inventory,
    stageSet: { ...refOfStageSet(ctx.stageSet), uid: ctx.stageSet.metadata.uid },
    stage: ctx.stage,
    position: ctx.index,
    objects,
    mode: ctx.inventoryMode,
    shardCap: ctx.inventoryShardCap,
    memo: ctx.memo,
    changes,
    previous,
    beforePrune: async (applied) => {
      timings.mark("apply");
      publishProgress(ctx, "Verifying");
      const skipped = new Set(applied.entries.filter((e) => e.action === "skipped").map((e) => e.id));
      await verify(
        ctx,
        applied.applied.filter((o) => !skipped.has(objectId(o))),
        applied.observed,
      );
      timings.mark("verify");
      await afterVerify?.();
      timings.mark("post");
    },
    onPrune: async () => publishProgress(ctx, "Pruning"),
    ...(ctx.laterStageIds ? { keep: ctx.laterStageIds } : {}),
  });
  timings.mark("prune");
  if (synced.prune.pruned.length > 0) {
    ctx.log.info({ stage: ctx.stage.name, pruned: synced.prune.pruned.map(describe) }, "pruned objects that left the stage");
  }
  return {
    apply: synced.apply,
    changes: synced.changes,
    pruned: synced.prune.pruned.length,
    dropped: synced.prune.dropped,
    entriesCount: synced.entries.length,
    shards: synced.shards,
  };
}

/**
 * Fetch (through the digest-keyed artifact cache) and build the stage's
 * objects; with a build cache, an unchanged artifact and stage spec reuse the
 * last render.
 */
export async function fetchAndBuild(
  ctx: Pick<StageRunContext, "artifacts" | "source" | "stage" | "index" | "stageSet" | "varSource" | "signal"> & {
    builds?: BuildCache;
    /** `spec.decryption` resolved (see decryptionFor); SOPS files are decrypted in memory before the build. */
    decryption?: StageDecryption;
  },
): Promise<KubeObject[]> {
  const namespace = ctx.stageSet.metadata.namespace ?? "";
  const render = async (varSource: VarSource) => {
    const lease = await ctx.artifacts.acquire(ctx.source.artifact, ctx.signal);
    try {
      return await buildStage({
        root: lease.dir,
        stageIndex: ctx.index,
        stage: ctx.stage,
        namespace,
        varSource,
        signal: ctx.signal,
        ...(ctx.decryption ? { decryption: ctx.decryption } : {}),
      });
    } finally {
      lease.release();
    }
  };
  if (!ctx.builds) return render(ctx.varSource);
  const variant = ctx.decryption ? `decrypt:${ctx.decryption.secretName ?? ""}` : "";
  return ctx.builds.build(ctx.source.artifact.digest, ctx.stage, namespace, ctx.varSource, render, variant);
}

/** Waits until `applied` is healthy; the first evaluation reads them from `observed` (the apply's answers). */
async function verify(ctx: StageRunContext, applied: KubeObject[], observed: ReadonlyMap<string, KubeObject>): Promise<void> {
  const refs: HealthRef[] = applied.map((o) => ({
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.metadata.name ?? "",
    namespace: o.metadata.namespace,
  }));
  const defaultNamespace = ctx.stageSet.metadata.namespace ?? "";
  const managedSelector = labelSelector(managedLabels(refOfStageSet(ctx.stageSet), ctx.stage.name));
  let lastProgress = "";
  await verifyStageHealth({
    stageIndex: ctx.index,
    stageName: ctx.stage.name,
    objects: refs,
    jobsWithTTL: jobsWithTTL(applied),
    readyChecks: ctx.stage.readyChecks,
    timeoutMs: resolveStageTimeout(ctx.stageSet.spec, ctx.stage),
    intervalMs: ctx.healthPollIntervalMs,
    signal: ctx.waitSignal ?? ctx.signal,
    fetch: firstFromObserved(observed, (targets, signal) => fetchLiveObjects(ctx.tenant, targets, defaultNamespace, managedSelector, signal)),
    onProgress: (health) => {
      const message = waitingFor(health);
      if (message === lastProgress) return;
      lastProgress = message;
      publishProgress(ctx, "Verifying", message);
    },
  });
}

/**
 * Writes a progress phase without holding the stage up: the status writer
 * keeps writes in order, so the stage's final status still lands after it,
 * and a failed progress write is retried by the next status write (it
 * writes the whole difference). Awaiting each one put two status round
 * trips on every stage's critical path (about 45 ms of a 1000-object first
 * apply on the two-core machine).
 */
function publishProgress(ctx: StageRunContext, phase: StageStatus["phase"], message?: string): void {
  void ctx.onPhase(phase, message).catch((err: unknown) => ctx.log.debug({ err: String(err), phase }, "progress status write failed"));
}

/** `waiting for Deployment/ns/web (InProgress: …) and 2 more`, or "" when nothing is pending. */
function waitingFor(health: StageHealth): string {
  const first = health.pending[0];
  if (!first) return "";
  const more = health.pending.length > 1 ? ` and ${health.pending.length - 1} more` : "";
  return `waiting for ${describeRef(first.object)} (${first.status}${first.message ? `: ${first.message}` : ""})${more}`;
}

/**
 * The inventory ids `objects` will have once applied (namespace defaulted as
 * discovery says). Kinds the API server does not serve yet are left out: no
 * live object of them can be a prune candidate.
 */
export async function placedIds(client: KubeClient, objects: readonly KubeObject[], defaultNamespace: string, stage: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const obj of objects) {
    const info = await client.resourceFor(obj.apiVersion, obj.kind).catch(() => undefined);
    if (!info) continue;
    try {
      ids.add(objectId(placeObject(obj, info.namespaced, defaultNamespace, stage)));
    } catch {
      // A malformed object fails its own stage; here it just holds nothing.
    }
  }
  return ids;
}

export function refOfStageSet(stageSet: StageSet): { name: string; namespace: string } {
  return { name: stageSet.metadata.name ?? "", namespace: stageSet.metadata.namespace ?? "" };
}

function describe(ref: { kind: string; namespace?: string; name: string }): string {
  return ref.namespace ? `${ref.kind}/${ref.namespace}/${ref.name}` : `${ref.kind}/${ref.name}`;
}

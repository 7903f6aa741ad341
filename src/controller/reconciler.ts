import { readFile } from "node:fs/promises";
import type { Action, Migration, SnapshotEntry, SourceRef, Stage, StageSet, StageSetStatus, StageStatus } from "../api/types.js";
import { compileWindows, updateGate, type CompiledWindow, type UpdateGate } from "../gating/windows.js";
import { readArtifactFile } from "../gating/version.js";
import { planTransition, runMigrations } from "./migration-run.js";
import { describeRevisions, isNewHold, newRevisions, pinnedStages, updateOverride, whenHeldShips } from "./update-hold.js";
import type { RollbackStore } from "../rollback/store.js";
import { displayUrl } from "../source/artifact.js";
import type { ArtifactLease } from "../source/artifact-cache.js";
import { fetchArtifact } from "../source/fetch.js";
import { isParked, newSnapshots, restorePlan, revisionsToPark, snapshotsOf } from "./rollback.js";
import { ActionLedger } from "../actions/ledger.js";
import type { ActionFailedError, ActionHooks } from "../actions/runner.js";
import type { ActionEnv, ActionExecutor, ActionList, RenderedSource } from "../actions/types.js";
import { decryptionFor, type StageDecryption } from "../build/decrypt.js";
import { buildStage } from "../build/index.js";
import type { KmsProvider } from "../sops/types.js";
import { systemClock, type Clock } from "../util/clock.js";
import { describeOperation } from "../actions/describe.js";
import { Annotations, FINALIZER } from "../api/types.js";
import { withDefaults } from "../api/defaults.js";
import { validateStageSet } from "../api/validate.js";
import { ChangeSet } from "../apply/change-set.js";
import { AppliedStateMemo } from "../apply/drift.js";
import { listInventories } from "../apply/inventory.js";
import { describeObject, refFromId } from "../apply/objects.js";
import { teardown, type DroppedEntry } from "../apply/prune.js";
import { kubeVarSource } from "../build/kube-var-source.js";
import type { InventoryMode } from "../config/flags.js";
import { errorMessage, InvalidSpecError, Reasons, StageSetError, WAITING_REASONS, type Reason } from "../errors.js";
import { KubeApiError } from "../kube/errors.js";
import type { KubeClient } from "../kube/client.js";
import type { EventMetadata, EventRecorder } from "../kube/events.js";
import type { ProcessResult } from "../kube/workqueue.js";
import type { Metrics } from "../server/metrics.js";
import type { ArtifactCache } from "../source/artifact-cache.js";
import { resolveSource, type ResolvedSource } from "../source/resolve.js";
import type { Logger } from "../util/log.js";
import { applyOutcome, findCondition, type Outcome } from "./conditions.js";
import type { Caches } from "./manager.js";
import { BuildCache } from "./build-cache.js";
import { CachedSourceReader } from "./source-reader.js";
import {
  forcedOnce,
  intervalsOf,
  inventoryNameCollision,
  isStageSteady,
  isSteadyState,
  jittered,
  MAX_REQUEUE_MS,
  reconcileStageRequest,
  succeededMessage,
  supersededBy,
  unsupportedMessage,
  type Intervals,
} from "./decisions.js";
import { fetchAndBuild, placedIds, refOfStageSet, runStage, type StageActionsContext } from "./stage-run.js";
import { StatusWriter } from "./status-writer.js";
import { ActiveRuns, SupersededError } from "./supersede.js";
import { tenantClient } from "./tenant.js";

export interface ReconcilerOptions {
  defaultIntervalMs: number;
  requeueDependencyMs: number;
  noCrossNamespaceRefs: boolean;
  inventoryMode: InventoryMode;
  inventoryShardCap: number;
  runbookBaseUrl: string;
  /** `--allowed-action-hosts`: host globs `http` actions may reach. */
  allowedActionHosts?: readonly string[];
  /** How often a stage's health is re-read while it is verified. */
  healthPollIntervalMs?: number;
  /** `--concurrent-builds`: stage renders (kustomize processes) at once; default unbounded. */
  concurrentBuilds?: number;
}

export interface ReconcilerDeps {
  client: KubeClient;
  caches: Caches;
  artifacts: ArtifactCache;
  events: EventRecorder;
  metrics?: Metrics;
  log: Logger;
  options: ReconcilerOptions;
  now?: () => Date;
  /** Spreads requeues (Flux's jitter); default ±5% with Math.random. */
  jitter?: (ms: number) => number;
  /** Runs actions (src/actions/executors.ts); without it a StageSet with actions fails closed. */
  executorFor?: (action: Action) => ActionExecutor;
  /** Times action waits; default the system clock. */
  clock?: Clock;
  /** Cloud KMS providers for SOPS files encrypted to KMS keys (the controller's ambient credentials). */
  kmsProviders?: readonly KmsProvider[];
  /** Where successful artifacts are kept for rollback when their producer no longer serves them. */
  rollbackStore?: RollbackStore;
}

/**
 * The StageSet reconciler. One call handles one StageSet key and reads top to
 * bottom like a run: deletion → finalizer → spec check → suspend →
 * dependencies → sources → each stage in order (fetch, build, apply, verify,
 * prune) → status. Every exit of a run, thrown or not, ends in a Ready
 * condition (Flux's deferred status patch). Status is written when a stage's
 * phase or the Ready condition changes, and once at the end, each time only
 * if it changed, so a steady-state run writes nothing.
 */
export class StageSetReconciler {
  readonly #deps: ReconcilerDeps;
  readonly #sources: CachedSourceReader;
  readonly #memo = new AppliedStateMemo();
  readonly #builds: BuildCache;
  readonly #now: () => Date;
  readonly #jitter: (ms: number) => number;
  readonly #active = new ActiveRuns();

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
    this.#builds = new BuildCache(undefined, deps.options.concurrentBuilds);
    this.#sources = new CachedSourceReader(deps.caches.sources, deps.client);
    const clock = deps.clock;
    this.#now = deps.now ?? (clock ? () => new Date(clock.now()) : () => new Date());
    this.#jitter = deps.jitter ?? ((ms) => jittered(ms));
    // Newer input cancels a wait under way: the StageSet's own changes, and any source's.
    deps.caches.stageSets.addHandlers({ onUpdate: (_old, obj) => this.#active.poke(keyOf(obj)) });
    for (const informer of deps.caches.sources.values()) {
      informer.addHandlers({ onUpdate: () => this.#active.poke(), onAdd: () => this.#active.poke() });
    }
  }

  async reconcile(key: string, signal: AbortSignal): Promise<ProcessResult> {
    const started = performance.now();
    const [namespace, name] = splitKey(key);
    const cached = this.#deps.caches.stageSets.get(namespace, name);
    if (!cached) return;
    // The cache may lag our own writes by a moment; the latest copy keeps the
    // status comparison honest and avoids acting on a deleted object.
    const stageSet = (await this.#deps.client.get<StageSet>(refOf(cached))) ?? undefined;
    if (!stageSet) return;
    const log = this.#deps.log.child({ stageset: key });
    let result: ProcessResult;
    try {
      result = stageSet.metadata.deletionTimestamp ? await this.#finalize(stageSet, log) : await this.#run(stageSet, log, signal);
      this.#deps.metrics?.observeReconcile((performance.now() - started) / 1000, result?.requeueAfterMs ? "requeue_after" : "success");
    } catch (err) {
      this.#deps.metrics?.observeReconcile((performance.now() - started) / 1000, "error");
      throw err;
    }
    return result;
  }

  async #run(original: StageSet, log: Logger, signal: AbortSignal): Promise<ProcessResult> {
    const { client, options } = this.#deps;
    const writer = new StatusWriter(client, original);
    const status: StageSetStatus = structuredClone(original.status ?? {});
    const generation = original.metadata.generation;
    const requestedAt = original.metadata.annotations?.[Annotations.requestedAt];
    if (requestedAt !== undefined) status.lastHandledReconcileAt = requestedAt;
    const changes = new ChangeSet();
    // Until the intervals are known (they may be the problem), a failure is retried at the default.
    let intervals: Intervals = { next: options.defaultIntervalMs, retry: options.defaultIntervalMs };

    const finish = async (outcome: Outcome & { inStage?: boolean }, requeueAfterMs: number | undefined, requeue: { exact?: boolean } = {}): Promise<ProcessResult> => {
      const before = findCondition(original.status?.conditions, "Ready");
      status.observedGeneration = generation;
      status.conditions = applyOutcome(status.conditions ?? [], outcome, generation, options.runbookBaseUrl, this.#now);
      await writer.write(status);
      this.#recordOutcome(original, outcome, before?.reason, before?.message, revisionMetadata(status.lastAttemptedRevisions));
      if (requeueAfterMs === undefined) return undefined;
      return { requeueAfterMs: requeue.exact ? Math.min(MAX_REQUEUE_MS, Math.max(1, Math.round(requeueAfterMs))) : this.#jitter(requeueAfterMs) };
    };

    let tenant: Awaited<ReturnType<typeof tenantClient>> | undefined;
    let run: { signal: AbortSignal; end(): void } | undefined;
    let steadyState = false;
    let state: RunState | undefined;
    try {
      // 1. Our finalizer first, so no object is applied that deletion could not find.
      if (!(original.metadata.finalizers ?? []).includes(FINALIZER)) {
        await client.patch(refOf(original), { metadata: { finalizers: [...(original.metadata.finalizers ?? []), FINALIZER] } }, "merge");
      }

      // 2. A spec the API server could not check (cross-field rules, durations) is refused before anything runs.
      const issues = validateStageSet(original);
      if (issues.length > 0) {
        const first = issues[0]!;
        throw new InvalidSpecError(`${first.field}: ${first.message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ""}`);
      }
      const stageSet: StageSet = { ...original, spec: withDefaults(original.spec) };
      intervals = intervalsOf(stageSet, options.defaultIntervalMs);
      const collision = inventoryNameCollision(original, this.#deps.caches.stageSets.list());
      if (collision) throw new InvalidSpecError(collision);
      const unsupported = unsupportedMessage(original.spec, { actions: this.#deps.executorFor !== undefined, decryption: true, rollback: true });
      if (unsupported) throw new InvalidSpecError(unsupported);

      // 3. Suspended: nothing is applied or pruned, unless `stagesetctl reconcile --force` asked for one run.
      if (stageSet.spec.suspend && !forcedOnce(original)) {
        return await finish({ ready: "False", reason: Reasons.Suspended, message: "reconciliation is suspended (spec.suspend: true)" }, undefined);
      }

      // 4. Dependencies must be Ready at their current generation.
      const blocker = this.#dependencyBlocker(stageSet);
      if (blocker?.reason === Reasons.InvalidSpec) throw new InvalidSpecError(blocker.message);
      if (blocker) return await finish(waiting(blocker.reason, blocker.message), options.requeueDependencyMs);

      // 5. Resolve every stage's source up front: a rollout starts only when all are available.
      const resolved = await this.#resolveAll(stageSet);
      // A revision that failed and was rolled back is not retried until something changes.
      const attempted = new Map(resolved.map((r) => [r.key, r.artifact.revision]));
      if (isParked(original.status, generation, attempted, forcedOnce(original))) {
        log.debug({ parked: original.status?.parkedRevisions }, "revisions parked after a rollback; waiting for a new revision, a spec change or a forced reconcile");
        // The Ready condition stays as the rollback left it; a reconcile request is still acknowledged.
        const ready = findCondition(original.status?.conditions, "Ready");
        const reason = (ready?.reason ?? Reasons.RolledBack) as Reason;
        return await finish({ ready: "False", reason, message: stripRunbook(ready?.message ?? "", reason, options.runbookBaseUrl) }, intervals.next);
      }
      const windows = compileWindows(stageSet.spec.updateWindows);
      const override = updateOverride(original);
      run = this.#active.begin(keyOf(original), this.#supersedeCheck(original, resolved, windows, override));
      tenant = await tenantClient(client, stageSet);

      // 6. Update windows: a closed window holds revisions not approved yet; `update-now` lets them through once.
      if (override !== undefined) status.lastHandledUpdateOverride = override;
      const fresh = newRevisions(stageSet, original.status, resolved);
      if (Object.keys(fresh).length > 0 && override === undefined) {
        const gate = updateGate(windows, this.#now().getTime());
        if (!gate.allowed) {
          const held = { original, stageSet, status, writer, log, signal, waitSignal: AbortSignal.any([signal, run.signal]), resolved, changes };
          const outcome = await this.#holdUpdate(held, fresh, gate, tenant.client);
          return await finish(outcome.outcome, outcome.requeueAfterMs ?? intervals.next, { exact: outcome.requeueAfterMs !== undefined });
        }
      }
      delete status.pendingUpdate;
      status.lastAttemptedRevisions = Object.fromEntries(resolved.map((r) => [r.key, r.artifact.revision]));

      // 7. The stages, in order; stage N+1 starts only once stage N is Ready.
      const stageRequest = reconcileStageRequest(original);
      if (stageRequest) status.lastHandledReconcileStage = stageRequest.handled;
      steadyState = !stageRequest && isSteadyState(original, resolved.map((r) => r.artifact.revision));
      const stageStatuses = initialStageStatuses(stageSet.spec.stages, status.stages);
      status.stages = stageStatuses;
      state = {
        original,
        stageSet,
        status,
        writer,
        steadyState,
        log,
        signal,
        waitSignal: AbortSignal.any([signal, run.signal]),
        resolved,
        changes,
        clearLedgerOf: stageRequest?.stage,
        currentIndex: 0,
      };
      // The version to deploy and the migrations crossing to it: refused before anything is applied when invalid.
      const migrations = stageSet.spec.version ? await this.#planVersion(state, tenant.client) : undefined;
      for (const [index, stage] of stageSet.spec.stages.entries()) {
        signal.throwIfAborted();
        state.currentIndex = index;
        if (migrations) await this.#migrate(state, index, stage, tenant.client, migrations.run);
        await this.#stage(state, index, stage, resolved[index]!, tenant.client, stageStatuses[index]!);
      }

      // 8. Stages removed from the spec: their objects go, last stage first.
      await this.#pruneRemovedStages(stageSet, tenant.client, log, changes);

      status.lastAppliedRevisions = Object.fromEntries(resolved.map((r) => [r.key, r.artifact.revision]));
      // The snapshot: what this StageSet last applied successfully, the one way back for a rollback.
      const snapshots = snapshotsOf(stageSet, resolved);
      status.lastAppliedSnapshot = snapshots;
      delete status.parkedRevisions;
      if (migrations) {
        // The deployed version moves only after a fully successful run.
        status.version = migrations.target;
        delete status.pendingMigrations;
      }
      await this.#storeSnapshots(original, newSnapshots(original.status?.lastAppliedSnapshot, snapshots), log);
      this.#reportChanges(original, changes, log, undefined);
      return await finish({ ready: "True", reason: Reasons.Succeeded, message: succeededMessage(stageSet.spec.stages.length, resolved) }, intervals.next);
    } catch (err) {
      if (signal.aborted) throw err;
      const failure = asStageSetError(err);
      // Our panic: an exception that is neither a typed failure nor an API answer (a bug).
      if (unexpected(err)) this.#deps.metrics?.runtimeReconcilePanics.inc({ controller: "stageset" });
      this.#reportChanges(original, changes, log, failure);
      const inStage = failedInStage.has(failure);
      // A superseded wait may surface as its own error or as an aborted request inside it.
      const superseded = run?.signal.aborted && run.signal.reason instanceof SupersededError ? run.signal.reason : undefined;
      if (superseded && steadyState) {
        // Nothing was being rolled out: start again with the new input without a status flip.
        log.info({ why: superseded.why }, "steady-state run superseded by newer input; starting again");
        return { requeueAfterMs: SUPERSEDED_REQUEUE_MS };
      }
      if (superseded) {
        const where = [...status.stages ?? []].find((s) => s.phase === "Verifying")?.name;
        const message = where ? `stage "${where}": ${superseded.message}` : superseded.message;
        log.info({ why: superseded.why }, "run superseded by newer input; starting again");
        return await finish(waiting(Reasons.Progressing, message), SUPERSEDED_REQUEUE_MS);
      }
      if (WAITING_REASONS.has(failure.reason)) {
        log.info({ reason: failure.reason, err: failure.message }, "run is waiting");
        return await finish(waiting(failure.reason, failure.message), failure.requeueAfterMs ?? intervals.retry);
      }
      log[unexpected(err) ? "error" : "warn"]({ reason: failure.reason, err: failure.message }, "run failed");
      if (state && tenant && state.stageSet.spec.rollbackOnFailure && inStage) {
        const rolledBack = await this.#rollBack(state, failure, tenant.client);
        if (rolledBack) return await finish(rolledBack, intervals.retry);
      }
      if (failure.terminal) {
        this.#deps.metrics?.runtimeTerminalReconcileErrors.inc({ controller: "stageset" });
        return await finish({ ...stalled(failure.reason, failure.message), inStage }, undefined);
      }
      return await finish({ ready: "False", reason: failure.reason, message: failure.message, inStage }, failure.requeueAfterMs ?? intervals.retry);
    } finally {
      run?.end();
      tenant?.close();
    }
  }

  /**
   * The check that tells a run under way that its input is superseded: the
   * StageSet's generation or reconcile request moved, or a source it
   * resolved (through the watch cache) now carries another revision.
   */
  #supersedeCheck(original: StageSet, resolved: readonly ResolvedSource[], windows: readonly CompiledWindow[], override: string | undefined): () => string | undefined {
    const revisions = new Map(resolved.map((r) => [r.key, r.artifact.revision]));
    const artifactOf = new Map(resolved.map((r) => [r.key, r.artifactFrom]));
    const input = {
      generation: original.metadata.generation,
      requestedAt: original.metadata.annotations?.[Annotations.requestedAt],
      revisions,
    };
    const { stageSets, sources } = this.#deps.caches;
    // While a window is closed a newer revision would only be held: the run under way finishes what it pinned (CONTRACT "Decisions").
    const held = () => windows.length > 0 && override === undefined && !updateGate(windows, this.#now().getTime()).allowed;
    return () =>
      supersededBy(input, stageSets.get(namespaceOf(original), nameOf(original)), (key) => {
        if (held()) return undefined;
        const from = artifactOf.get(key);
        if (!from) return undefined;
        const obj = sources.get(from.kind)?.get(from.namespace ?? "", from.name);
        return (obj?.status as { artifact?: { revision?: string } } | undefined)?.artifact?.revision;
      });
  }

  /**
   * One stage: run it, record its phase and counts, emit drift events; a
   * failure marks it Failed and propagates. A stage whose revision did not
   * change publishes no phase (its status is written with the next change).
   */
  async #stage(
    run: RunState,
    index: number,
    stage: Stage,
    source: ResolvedSource,
    tenant: KubeClient,
    stageStatus: StageStatus,
    mode: { restore?: boolean } = {},
  ): Promise<void> {
    const { options } = this.#deps;
    const { stageSet, status, writer } = run;
    const quiet = run.steadyState || (run.clearLedgerOf !== stage.name && isStageSteady(run.original, index, source.artifact.revision));
    const labels = { namespace: namespaceOf(stageSet), name: nameOf(stageSet), stage: stage.name };
    const publish = async (phase: StageStatus["phase"], message = "") => {
      // A stage that is only re-asserted keeps its recorded phase (Ready) unless it fails.
      if (quiet) return;
      const changed = stageStatus.phase !== phase;
      stageStatus.phase = phase;
      stageStatus.message = message;
      status.conditions = applyOutcome(
        status.conditions ?? [],
        { ready: "Unknown", reason: Reasons.Progressing, message: `stage "${stage.name}": ${phase.toLowerCase()} revision ${source.artifact.revision}`, reconciling: true },
        stageSet.metadata.generation,
        options.runbookBaseUrl,
        this.#now,
      );
      // A progress message alone (which object verify waits for) is written too: `get` shows it live.
      if (changed || message) await writer.write(status);
    };
    const stageChanges = new ChangeSet();
    try {
      const result = await runStage({
        stageSet,
        stage,
        index,
        source,
        tenant,
        inventory: this.#deps.client,
        artifacts: this.#deps.artifacts,
        varSource: kubeVarSource(tenant),
        inventoryMode: options.inventoryMode,
        inventoryShardCap: options.inventoryShardCap,
        memo: this.#memo,
        builds: this.#builds,
        log: run.log,
        signal: run.signal,
        waitSignal: run.waitSignal,
        changes: stageChanges,
        onPhase: publish,
        healthPollIntervalMs: options.healthPollIntervalMs ?? DEFAULT_HEALTH_POLL_MS,
        onTimings: (durationsMs) => {
          for (const [phase, ms] of Object.entries(durationsMs)) this.#deps.metrics?.stagePhaseDuration.observe({ phase }, ms / 1000);
        },
        laterStageIds: () => this.#laterStageIds(run, index, tenant),
        ...(hasActions(stage) && !mode.restore ? { actions: this.#actionsContext(run, index, stage, source, tenant, stageStatus) } : {}),
        ...this.#decryption(stageSet),
      });
      this.#reportDropped(run.original, result.dropped, run.log);
      Object.assign(stageStatus, { phase: "Ready", message: "", appliedRevision: source.artifact.revision, entriesCount: result.entriesCount, shards: result.shards });
      this.#deps.metrics?.stageReady.set(labelsOf(stageSet, stage), 1);
      if (run.steadyState && result.apply.driftCorrected > 0) {
        // Only a steady-state run can call a difference drift; during a rollout it is the new revision.
        this.#deps.events.warning(run.original, "DriftCorrected", `stage "${stage.name}": corrected drift on ${result.apply.driftCorrected} object(s)`);
        this.#deps.metrics?.driftCorrectedTotal.inc(labels, result.apply.driftCorrected);
      }
      if (!quiet) this.#deps.metrics?.stageAppliedTotal.inc(labels);
    } catch (err) {
      const superseded = run.waitSignal.aborted ? (run.waitSignal.reason as unknown) : undefined;
      if (superseded instanceof SupersededError) {
        // Not a failure of this stage: the run starts again with the newer input.
        stageStatus.message = superseded.message;
        throw superseded;
      }
      this.#deps.metrics?.stageReady.set(labelsOf(stageSet, stage), 0);
      const failure = asStageSetError(err, stage.name);
      if (!WAITING_REASONS.has(failure.reason)) stageStatus.phase = "Failed";
      stageStatus.message = failure.message;
      failedInStage.add(failure);
      throw failure;
    } finally {
      run.changes.append(stageChanges);
    }
  }

  /**
   * Rollback after a failed run (`spec.rollbackOnFailure`): every stage up to
   * the failed one whose artifact differs from its snapshot is restored, in
   * stage order, best effort — the artifact from its producer if it still
   * serves that digest, else from the rollback store; re-rendered with the
   * current stage settings (decryption again) and applied without actions.
   * The failed revisions are parked. Returns the outcome (RolledBack, or
   * PreviousRevisionUnavailable naming what was tried), or undefined when
   * there is nothing to go back to (a first rollout).
   */
  async #rollBack(run: RunState, failure: StageSetError, tenant: KubeClient): Promise<Outcome | undefined> {
    const plan = restorePlan(run.stageSet, run.original.status?.lastAppliedSnapshot, run.resolved, run.currentIndex);
    run.log.info({ restore: plan.map((p) => `${p.snapshot.stage}: ${p.failedRevision} -> ${p.snapshot.revision}`) }, plan.length ? "rolling back" : "nothing to roll back to (no snapshot differs)");
    if (plan.length === 0) return undefined;
    const restored: string[] = [];
    const problems: string[] = [];
    for (const step of plan) {
      const stage = run.stageSet.spec.stages[step.index]!;
      const artifact = { url: step.snapshot.url, digest: step.snapshot.digest, revision: step.snapshot.revision };
      const acquired = await this.#acquireSnapshot(run.stageSet, stage, step.snapshot, run.signal);
      if ("problem" in acquired) {
        problems.push(`stage "${stage.name}" cannot go back to ${step.snapshot.revision}: ${acquired.problem}`);
        continue;
      }
      const lease = acquired.lease;
      try {
        const source = { ...run.resolved[step.index]!, artifact };
        await this.#stage(run, step.index, stage, source, tenant, run.status.stages![step.index]!, { restore: true });
        restored.push(`stage "${stage.name}" ${step.failedRevision} → ${step.snapshot.revision}`);
      } catch (err) {
        problems.push(`stage "${stage.name}" could not be restored to ${step.snapshot.revision}: ${errorMessage(err)}`);
      } finally {
        lease.release();
      }
    }
    run.status.parkedRevisions = revisionsToPark(run.status.lastAttemptedRevisions ?? {}, run.original.status?.lastAppliedRevisions);
    const why = `the run failed: ${failure.message}`;
    if (problems.length > 0) {
      const message = `rollback incomplete: ${problems.join("; ")}${restored.length ? `; restored ${restored.join(", ")}` : ""}; ${why}`;
      run.status.lastRollback = { at: this.#now().toISOString(), message };
      return { ready: "False", reason: Reasons.PreviousRevisionUnavailable, message };
    }
    const message = `rolled back ${restored.join(", ")}; ${why}`;
    run.status.lastRollback = { at: this.#now().toISOString(), message };
    return { ready: "False", reason: Reasons.RolledBack, message };
  }

  /**
   * A stage's snapshot artifact, leased: from its producer if it still serves
   * that digest, else from the rollback store. Returns the lease, or the
   * problem naming everything that was tried.
   */
  async #acquireSnapshot(stageSet: StageSet, stage: Stage, snapshot: SnapshotEntry, signal: AbortSignal): Promise<{ lease: ArtifactLease } | { problem: string }> {
    const { artifacts, rollbackStore: store } = this.#deps;
    const artifact = { url: snapshot.url, digest: snapshot.digest, revision: snapshot.revision };
    const owner = { namespace: namespaceOf(stageSet), stageSet: nameOf(stageSet), stage: stage.name };
    const tried: string[] = [];
    try {
      return { lease: await artifacts.acquire(artifact, signal) };
    } catch (err) {
      tried.push(`its producer no longer serves it at ${displayUrl(artifact.url)} (${errorMessage(err)})`);
    }
    if (!store) {
      tried.push("no rollback store is configured (--rollback-store-path or --rollback-store-s3-endpoint)");
      return { problem: tried.join("; ") };
    }
    try {
      const tarball = await store.get(owner, artifact.digest);
      if (tarball) return { lease: await artifacts.acquireFromBytes(artifact, tarball) };
      tried.push(`the ${store.kind} rollback store (${store.description}) holds no verified copy of ${artifact.digest}`);
    } catch (err) {
      tried.push(`the ${store.kind} rollback store (${store.description}) failed: ${errorMessage(err)}`);
    }
    return { problem: tried.join("; ") };
  }

  /**
   * A run whose new revisions a closed update window holds. With
   * `windowScope: Updates` every stage that has a snapshot re-applies it
   * (drift correction on the pinned state, no actions); with `All` nothing
   * is applied. Records `status.pendingUpdate`, emits `UpdateDeferred` and
   * counts `stageset_update_deferred_total` once per newly held revision set.
   * Returns the UpdateDeferred outcome and the delay (ms) until the window
   * opens, when known.
   */
  async #holdUpdate(
    run: Omit<RunState, "steadyState" | "clearLedgerOf" | "currentIndex">,
    held: Record<string, string>,
    gate: UpdateGate,
    tenant: KubeClient,
  ): Promise<{ outcome: Outcome; requeueAfterMs: number | undefined }> {
    const { original, stageSet, status, log } = run;
    const now = this.#now().getTime();
    const opens = gate.nextOpensAt === undefined ? undefined : new Date(gate.nextOpensAt).toISOString();
    const isNew = isNewHold(original.status?.pendingUpdate, held);
    status.pendingUpdate = { revisions: held, ...(opens ? { nextWindowOpens: opens } : {}) };
    const what = describeRevisions(held);
    const when = whenHeldShips(gate);
    const notes: string[] = [];
    if (stageSet.spec.windowScope === "All") {
      notes.push("windowScope: All, so nothing is applied (drift correction paused)");
    } else {
      const stageStatuses = initialStageStatuses(stageSet.spec.stages, status.stages);
      status.stages = stageStatuses;
      const state: RunState = { ...run, steadyState: true, clearLedgerOf: undefined, currentIndex: 0 };
      const pinned = pinnedStages(stageSet, original.status?.lastAppliedSnapshot);
      for (const { index, snapshot } of pinned) {
        const stage = stageSet.spec.stages[index]!;
        const acquired = await this.#acquireSnapshot(stageSet, stage, snapshot, run.signal);
        if ("problem" in acquired) {
          notes.push(`drift correction paused from stage "${stage.name}": its pinned revision ${snapshot.revision} is unavailable (${acquired.problem})`);
          this.#deps.events.warning(original, "PinnedRevisionUnavailable", notes.at(-1)!);
          break;
        }
        try {
          state.currentIndex = index;
          const source = { ...run.resolved[index]!, artifact: { url: snapshot.url, digest: snapshot.digest, revision: snapshot.revision } };
          await this.#stage(state, index, stage, source, tenant, stageStatuses[index]!, { restore: true });
        } finally {
          acquired.lease.release();
        }
      }
      if (pinned.length < stageSet.spec.stages.length) {
        notes.push(`stage "${stageSet.spec.stages[pinned.length]!.name}"${pinned.length + 1 < stageSet.spec.stages.length ? " and later stages" : ""} never applied, so held entirely`);
      }
    }
    const message = `update held by ${gate.heldBy ?? "an update window"}: ${what} waits; ${when}${notes.length ? `; ${notes.join("; ")}` : ""}`;
    if (isNew) {
      log.info({ held, nextWindowOpens: opens }, "new revisions held by an update window");
      this.#deps.events.normal(original, Reasons.UpdateDeferred, message, revisionMetadata(held));
      this.#deps.metrics?.updateDeferredTotal.inc({ namespace: namespaceOf(stageSet), name: nameOf(stageSet) });
    }
    this.#reportChanges(original, run.changes, log, undefined);
    const requeueAfterMs = gate.nextOpensAt === undefined ? undefined : gate.nextOpensAt - now + WINDOW_OPEN_GRACE_MS;
    return { outcome: waiting(Reasons.UpdateDeferred, message), requeueAfterMs };
  }

  /**
   * The version this rollout deploys (`spec.version`) and the migrations
   * crossing from `status.version` to it. Writes `status.pendingMigrations`
   * before anything runs. Throws InvalidVersionError (terminal) for a
   * missing or unparseable version and DowngradeRequiresMigrationError
   * (terminal) for a downgrade across a migration's `to`.
   */
  async #planVersion(run: RunState, tenant: KubeClient): Promise<{ target: string; run: Migration[] }> {
    const { stageSet, status } = run;
    const stageIndex = (name: string) => stageSet.spec.stages.findIndex((s) => s.name === name);
    const transition = await planTransition(stageSet.spec.version!, stageSet.spec.migrations, status, {
      // The same render the stage applies (through the build cache).
      objectsOf: (stage) =>
        fetchAndBuild({
          artifacts: this.#deps.artifacts,
          builds: this.#builds,
          source: run.resolved[stageIndex(stage)]!,
          stage: stageSet.spec.stages[stageIndex(stage)]!,
          index: stageIndex(stage),
          stageSet,
          varSource: kubeVarSource(tenant),
          signal: run.signal,
          ...this.#decryption(stageSet),
        }),
      readArtifactFile: async (stage, path) => {
        const lease = await this.#deps.artifacts.acquire(run.resolved[stageIndex(stage)]!.artifact, run.signal);
        try {
          return await readArtifactFile(lease.dir, path);
        } finally {
          lease.release();
        }
      },
    });
    if (transition.planned.length > 0) {
      if (JSON.stringify(status.pendingMigrations) !== JSON.stringify(run.original.status?.pendingMigrations ?? [])) await run.writer.write(status);
      run.log.info({ from: status.version, to: transition.target, origin: transition.origin, pending: status.pendingMigrations }, "version transition");
    }
    return { target: transition.target, run: transition.planned };
  }

  /** Runs the planned migrations anchored at `stage` (before its pre actions), in ascending `to` order. */
  async #migrate(run: RunState, index: number, stage: Stage, tenant: KubeClient, planned: readonly Migration[]): Promise<void> {
    const here = planned.filter((m) => m.stage === stage.name);
    if (here.length === 0) return;
    const { events, metrics } = this.#deps;
    const labels = (m: Migration, result: string) => ({ namespace: namespaceOf(run.stageSet), name: nameOf(run.stageSet), migration: m.name, result });
    await runMigrations(
      {
        stageSet: run.stageSet,
        status: run.status,
        persist: async () => void (await run.writer.write(run.status)),
        env: this.#actionEnv(run, index, stage, run.resolved[index]!.artifact.revision, tenant),
        executorFor: this.#executorFor(),
        started: (m) => {
          events.normal(run.original, "MigrationStarted", `migration "${m.name}" (to ${m.to}) started before stage "${stage.name}"`);
          const stageStatus = run.status.stages?.[index];
          if (stageStatus) stageStatus.message = `running migration "${m.name}"`;
        },
        completed: (m, seconds) => {
          events.normal(run.original, "MigrationCompleted", `migration "${m.name}" (to ${m.to}) completed in ${seconds.toFixed(1)}s`);
          metrics?.migrationTotal.inc(labels(m, "success"));
        },
        failed: (m) => metrics?.migrationTotal.inc(labels(m, "failure")),
      },
      here,
    );
  }

  /** The executor factory; a StageSet with actions or migrations is refused earlier when there is none. */
  #executorFor(): (action: Action) => ActionExecutor {
    const executorFor = this.#deps.executorFor;
    if (!executorFor) throw new InvalidSpecError("actions are not supported by this controller instance");
    return executorFor;
  }

  /**
   * Puts each newly recorded snapshot's artifact (fetched again, digest
   * verified) into the rollback store. A refused write is a
   * `RollbackStoreFailed` Warning event; the rollout still succeeds.
   */
  async #storeSnapshots(stageSet: StageSet, snapshots: readonly SnapshotEntry[], log: Logger): Promise<void> {
    const store = this.#deps.rollbackStore;
    if (!store || snapshots.length === 0) return;
    for (const snapshot of snapshots) {
      const owner = { namespace: namespaceOf(stageSet), stageSet: nameOf(stageSet), stage: snapshot.stage };
      let fetched: Awaited<ReturnType<typeof fetchArtifact>> | undefined;
      try {
        fetched = await fetchArtifact({ url: snapshot.url, digest: snapshot.digest, revision: snapshot.revision });
        await store.put(owner, snapshot.digest, await readFile(fetched.path));
        log.debug({ stage: snapshot.stage, digest: snapshot.digest, store: store.kind }, "snapshot stored");
      } catch (err) {
        const message = `stage "${snapshot.stage}": storing ${snapshot.revision} (${snapshot.digest}) in the ${store.kind} rollback store (${store.description}) failed: ${errorMessage(err)}`;
        log.warn({ stage: snapshot.stage }, message);
        this.#deps.events.warning(stageSet, "RollbackStoreFailed", message);
      } finally {
        await fetched?.remove();
      }
    }
  }

  /** `{ decryption }` for the build when the StageSet asks for SOPS decryption (keys read as the tenant), else nothing. */
  #decryption(stageSet: StageSet): { decryption?: StageDecryption } {
    const decryption = decryptionFor(stageSet.spec.decryption, this.#deps.kmsProviders ? { kms: this.#deps.kmsProviders } : {});
    return decryption ? { decryption } : {};
  }

  /**
   * What a stage's actions run with: the ledger (cleared for a new revision
   * or a reconcile-stage request, persisted through the status writer
   * before the next step), the tenant, the run's wait signal, and hooks that
   * publish the running action, emit events and count metrics.
   */
  #actionsContext(run: RunState, index: number, stage: Stage, source: ResolvedSource, tenant: KubeClient, stageStatus: StageStatus): StageActionsContext {
    const { events, metrics } = this.#deps;
    const ledger = new ActionLedger(stageStatus, source.artifact.revision, async () => void (await run.writer.write(run.status)), {
      clear: run.clearLedgerOf === stage.name,
    });
    const labels = (list: ActionList) => ({ namespace: namespaceOf(run.stageSet), name: nameOf(run.stageSet), stage: stage.name, list });
    const hooks: ActionHooks = {
      started: async (list, action, attempt) => {
        const what = `${list} action "${action.name}" (${describeOperation(action)})${attempt > 1 ? `, attempt ${attempt}` : ""}`;
        events.normal(run.original, "ActionStarted", `stage "${stage.name}": ${what} started`);
        stageStatus.message = `running ${what}`;
        await run.writer.write(run.status);
      },
      succeeded: (list, _action, _result, seconds) => {
        metrics?.actionTotal.inc({ ...labels(list), result: "success" });
        metrics?.actionDuration.observe(labels(list), seconds);
      },
      failed: (list, action, error, seconds) => {
        metrics?.actionTotal.inc({ ...labels(list), result: "failure" });
        metrics?.actionDuration.observe(labels(list), seconds);
        events.warning(run.original, "ActionFailed", `stage "${stage.name}": ${list} action "${action.name}" failed: ${error.message}`);
      },
    };
    return {
      ledger,
      env: this.#actionEnv(run, index, stage, source.artifact.revision, tenant),
      executorFor: this.#executorFor(),
      hooks,
      onFailureActionFailed: (failure: ActionFailedError) => events.warning(run.original, "OnFailureAction", failure.message),
    };
  }

  /** What every action of a stage runs with (list and timeout are added per action). */
  #actionEnv(run: RunState, index: number, stage: Stage, revision: string, tenant: KubeClient): Omit<ActionEnv, "list" | "timeoutMs"> {
    return {
      stageSet: run.stageSet,
      stage,
      stageIndex: index,
      revision,
      tenant,
      render: (sourceRef, path, signal) => this.#renderActionSource(run, index, stage, tenant, sourceRef, path, signal),
      allowedHosts: this.#deps.options.allowedActionHosts ?? [],
      clock: this.#deps.clock ?? systemClock,
      signal: run.waitSignal,
      log: run.log.child({ stage: stage.name }),
    };
  }

  /** The objects of a `job` or `apply` action's source: fetched and built like a stage's, without substitution or patches. */
  async #renderActionSource(run: RunState, index: number, stage: Stage, tenant: KubeClient, sourceRef: SourceRef, path: string | undefined, signal: AbortSignal): Promise<RenderedSource> {
    const namespace = namespaceOf(run.stageSet);
    const resolved = await resolveSource(
      { sourceRef, namespace, stage: stage.name, field: `spec.stages[${index}].actions` },
      this.#sources,
      { noCrossNamespaceRefs: this.#deps.options.noCrossNamespaceRefs },
    );
    const lease = await this.#deps.artifacts.acquire(resolved.artifact, signal);
    try {
      const objects = await buildStage({
        root: lease.dir,
        stageIndex: index,
        stage: { name: stage.name, sourceRef, ...(path ? { path } : {}) },
        namespace,
        varSource: kubeVarSource(tenant),
        signal,
        ...this.#decryption(run.stageSet),
      });
      return { objects, revision: resolved.artifact.revision };
    } finally {
      lease.release();
    }
  }

  /**
   * What the stages after `index` render now (built through the build cache;
   * a stage that cannot be built holds nothing), so an object that moved to a
   * later stage is handed over instead of being pruned and re-created.
   */
  async #laterStageIds(run: RunState, index: number, tenant: KubeClient): Promise<ReadonlySet<string>> {
    const ids = new Set<string>();
    const namespace = namespaceOf(run.stageSet);
    for (const [later, stage] of run.stageSet.spec.stages.entries()) {
      if (later <= index) continue;
      const objects = await fetchAndBuild({
        artifacts: this.#deps.artifacts,
        builds: this.#builds,
        source: run.resolved[later]!,
        stage,
        index: later,
        stageSet: run.stageSet,
        varSource: kubeVarSource(tenant),
        signal: run.signal,
        ...this.#decryption(run.stageSet),
      }).catch(() => []);
      for (const id of await placedIds(tenant, objects, namespace, stage.name)) ids.add(id);
    }
    return ids;
  }

  async #pruneRemovedStages(stageSet: StageSet, tenant: KubeClient, log: Logger, changes: ChangeSet): Promise<void> {
    const recorded = await listInventories(this.#deps.client, refOfStageSet(stageSet));
    const current = new Set(stageSet.spec.stages.map((s) => s.name));
    const removed = new Set([...recorded.keys()].filter((name) => !current.has(name)));
    if (removed.size === 0) return;
    const result = await teardown({ client: tenant, inventoryClient: this.#deps.client, stageSet: refOfStageSet(stageSet), onlyStages: removed });
    for (const ref of result.deleted) changes.add(ref, "deleted");
    for (const { ref, reason } of result.kept) changes.add(ref, "kept", reason);
    this.#reportDropped(stageSet, result.dropped, log);
    log.info({ stages: result.stages, deleted: result.deleted.length }, "removed stages torn down");
  }

  async #resolveAll(stageSet: StageSet): Promise<ResolvedSource[]> {
    const namespace = namespaceOf(stageSet);
    const resolved: ResolvedSource[] = [];
    for (const [index, stage] of stageSet.spec.stages.entries()) {
      resolved.push(
        await resolveSource(
          { sourceRef: stage.sourceRef, namespace, stage: stage.name, field: `spec.stages[${index}].sourceRef` },
          this.#sources,
          { noCrossNamespaceRefs: this.#deps.options.noCrossNamespaceRefs },
        ),
      );
    }
    return resolved;
  }

  #dependencyBlocker(stageSet: StageSet): { reason: Reason; message: string } | undefined {
    const namespace = namespaceOf(stageSet);
    for (const [index, dep] of (stageSet.spec.dependsOn ?? []).entries()) {
      const depNamespace = dep.namespace ?? namespace;
      if (depNamespace !== namespace && this.#deps.options.noCrossNamespaceRefs) {
        return {
          reason: Reasons.InvalidSpec,
          message: `spec.dependsOn[${index}].namespace: cross-namespace dependencies are refused by --no-cross-namespace-refs; depend on a StageSet in ${namespace}`,
        };
      }
      const other = this.#deps.caches.stageSets.get(depNamespace, dep.name);
      if (!other) return { reason: Reasons.DependencyNotReady, message: `dependency ${depNamespace}/${dep.name} does not exist` };
      const ready = findCondition(other.status?.conditions, "Ready");
      if (ready?.status !== "True" || other.status?.observedGeneration !== other.metadata.generation) {
        return { reason: Reasons.DependencyNotReady, message: `dependency ${depNamespace}/${dep.name} is not Ready${ready ? ` (${ready.reason})` : ""}` };
      }
    }
    return undefined;
  }

  /**
   * Deletion: tear the stages down in reverse order as the StageSet's
   * identity, then release the finalizer. When that identity cannot be
   * built or is refused, nothing is orphaned: the finalizer and the
   * inventories stay, status and a Warning event name the objects not
   * removed, and the teardown is retried.
   */
  async #finalize(stageSet: StageSet, log: Logger): Promise<ProcessResult> {
    if (!(stageSet.metadata.finalizers ?? []).includes(FINALIZER)) return;
    const changes = new ChangeSet();
    let tenant: Awaited<ReturnType<typeof tenantClient>> | undefined;
    try {
      tenant = await tenantClient(this.#deps.client, stageSet);
      const pruneByStage = new Map((stageSet.spec.stages ?? []).map((s) => [s.name, s.prune ?? true]));
      const result = await teardown({ client: tenant.client, inventoryClient: this.#deps.client, stageSet: refOfStageSet(stageSet), pruneByStage });
      for (const ref of result.deleted) changes.add(ref, "deleted");
      for (const { ref, reason } of result.kept) changes.add(ref, "kept", reason);
      this.#reportDropped(stageSet, result.dropped, log);
      log.info({ stages: result.stages, deleted: result.deleted.length, kept: result.kept.length }, "torn down");
    } catch (err) {
      return this.#teardownBlocked(stageSet, log, asStageSetError(err), changes);
    } finally {
      tenant?.close();
    }
    await this.#deps.client.patch(
      refOf(stageSet),
      { metadata: { finalizers: (stageSet.metadata.finalizers ?? []).filter((f) => f !== FINALIZER), resourceVersion: stageSet.metadata.resourceVersion } },
      "merge",
    );
    this.#deps.metrics?.forgetStageSet(namespaceOf(stageSet), nameOf(stageSet), (stageSet.spec.stages ?? []).map((s) => s.name));
    return;
  }

  async #teardownBlocked(stageSet: StageSet, log: Logger, failure: StageSetError, changes: ChangeSet): Promise<ProcessResult> {
    const remaining = await listInventories(this.#deps.client, refOfStageSet(stageSet)).catch(() => new Map());
    const refs = [...remaining.values()].flatMap((state) => state.entries.map((e: { id: string; v: string }) => refFromId(e.id, e.v)));
    const listed = refs.slice(0, 10).map(describeObject).join(", ");
    const more = refs.length > 10 ? ` and ${refs.length - 10} more` : "";
    const message =
      `deletion blocked, objects kept: ${failure.message}; ` +
      (refs.length > 0 ? `not removed: ${listed}${more}. ` : "") +
      `Fix the identity (spec.serviceAccountName / spec.kubeConfig) to let the teardown finish, or remove the finalizer ${FINALIZER} to leave the objects in place`;
    log.warn({ reason: failure.reason, notRemoved: refs.length, err: failure.message }, "teardown failed; keeping the finalizer and the inventory");
    const options = this.#deps.options;
    const status: StageSetStatus = structuredClone(stageSet.status ?? {});
    const before = findCondition(status.conditions, "Ready");
    status.conditions = applyOutcome(status.conditions ?? [], { ready: "False", reason: failure.reason, message }, stageSet.metadata.generation, options.runbookBaseUrl, this.#now);
    await new StatusWriter(this.#deps.client, stageSet).write(status).catch((err: unknown) => log.debug({ err: String(err) }, "status write failed"));
    this.#reportChanges(stageSet, changes, log, failure);
    if (before?.message !== status.conditions.find((c) => c.type === "Ready")?.message) this.#deps.events.warning(stageSet, "TeardownFailed", message);
    let retry = options.defaultIntervalMs;
    try {
      retry = intervalsOf(stageSet, options.defaultIntervalMs).retry;
    } catch {
      // an invalid interval does not hold the teardown back
    }
    return { requeueAfterMs: this.#jitter(retry) };
  }

  /** An inventory entry given up (its kind is served in no version) is never silent: a Warning event and a log line name it. */
  #reportDropped(stageSet: StageSet, dropped: readonly DroppedEntry[], log: Logger): void {
    for (const entry of dropped) {
      log.warn({ object: describeObject(entry.ref) }, entry.message);
      this.#deps.events.warning(stageSet, "PruneFailed", entry.message);
    }
  }

  /**
   * Logs what a run changed and emits one Normal event summarizing it
   * (`created 3, configured 1, pruned 2`); a run that changed nothing is silent.
   */
  #reportChanges(stageSet: StageSet, changes: ChangeSet, log: Logger, failure: StageSetError | undefined): void {
    const summary = changes.summary();
    if (!summary) return;
    log.info({ changes: changes.describeChanges(), ...(failure ? { failedWith: failure.reason } : {}) }, `changes: ${summary}`);
    this.#deps.events.normal(stageSet, "Changes", failure ? `${summary} (before the run failed)` : summary);
  }

  /**
   * The reconcile counter, and an event on every Ready transition (or new
   * failure message): `Succeeded`; `StageFailed` for any failure inside a
   * stage (the message names the stage and the cause); the Ready reason for
   * failures outside one and for waiting.
   */
  #recordOutcome(
    stageSet: StageSet,
    outcome: Outcome & { inStage?: boolean },
    previousReason: string | undefined,
    previousMessage: string | undefined,
    metadata: EventMetadata | undefined,
  ): void {
    this.#deps.metrics?.reconcileTotal.inc({ namespace: namespaceOf(stageSet), name: nameOf(stageSet), reason: outcome.reason });
    const message = outcome.message;
    if (outcome.reason === previousReason && previousMessage?.startsWith(message)) return;
    // Emitted by the hold itself, once per held revision set (its message changes as the window's end approaches).
    if (outcome.reason === Reasons.UpdateDeferred) return;
    if (outcome.reason === Reasons.Succeeded) this.#deps.events.normal(stageSet, "Succeeded", message, metadata);
    else if (outcome.reason === Reasons.Suspended || WAITING_REASONS.has(outcome.reason)) this.#deps.events.normal(stageSet, outcome.reason, message, metadata);
    else this.#deps.events.warning(stageSet, outcome.inStage ? "StageFailed" : outcome.reason, message, metadata);
  }
}

/** A condition message without the runbook suffix applyOutcome appends (so re-applying it does not append it twice). */
function stripRunbook(message: string, reason: Reason, runbookBaseUrl: string): string {
  const suffix = ` (runbook: ${runbookBaseUrl}/${reason.toLowerCase()}/)`;
  return runbookBaseUrl && message.endsWith(suffix) ? message.slice(0, -suffix.length) : message;
}

function hasActions(stage: Stage): boolean {
  return (["pre", "post", "onFailure"] as const).some((list) => (stage.actions?.[list] ?? []).length > 0);
}

/**
 * Flux's `revision` event metadata (what notification-controller hands to
 * Providers): the single revision when every source is at one, else
 * `<namespace>/<source>@<revision>` pairs; undefined when nothing is known.
 */
function revisionMetadata(revisions: Record<string, string> | undefined): EventMetadata | undefined {
  const entries = Object.entries(revisions ?? {});
  if (entries.length === 0) return undefined;
  const distinct = new Set(entries.map(([, revision]) => revision));
  return { revision: distinct.size === 1 ? entries[0]![1] : entries.map(([key, revision]) => `${key}@${revision}`).join(", ") };
}

/** A held run is requeued this long after its window opens, so the opening instant itself is inside the window. */
const WINDOW_OPEN_GRACE_MS = 1_000;

/** How soon a superseded run starts again (the watch event has usually queued it already). */
const SUPERSEDED_REQUEUE_MS = 1_000;
/** How often verify re-reads a stage's objects: under a second, so a healthy stage moves on at once. */
const DEFAULT_HEALTH_POLL_MS = 500;

/** Failures raised inside a stage (their event is `StageFailed`). */
const failedInStage = new WeakSet<StageSetError>();

/** What one run carries from stage to stage. */
interface RunState {
  original: StageSet;
  /** The StageSet with defaults applied. */
  stageSet: StageSet;
  status: StageSetStatus;
  writer: StatusWriter;
  steadyState: boolean;
  log: Logger;
  signal: AbortSignal;
  /** Aborts a verify wait on shutdown or when newer input supersedes the run. */
  waitSignal: AbortSignal;
  resolved: ResolvedSource[];
  /** Every write of the run, across stages. */
  changes: ChangeSet;
  /** The stage whose action ledger a reconcile-stage request clears in this run. */
  clearLedgerOf: string | undefined;
  /** The stage running (or that failed): rollback restores up to it. */
  currentIndex: number;
}

function waiting(reason: Reason, message: string): Outcome {
  return { ready: "False", reason, message, reconciling: true };
}

function stalled(reason: Reason, message: string): Outcome {
  return { ready: "False", reason, message, stalled: true };
}

/** True for a throw that is not one of our typed failures nor an API server answer: a bug, logged at error. */
function unexpected(err: unknown): boolean {
  return !(err instanceof StageSetError) && !(err instanceof KubeApiError);
}

/** Wraps unexpected errors so every failure carries a reason and names the stage. */
function asStageSetError(err: unknown, stage?: string): StageSetError {
  const named = (message: string) => (stage && !message.includes(`stage "${stage}"`) ? `stage "${stage}": ${message}` : message);
  if (err instanceof StageSetError) {
    if (named(err.message) === err.message) return err;
    const wrapped = new StageSetError(err.reason, named(err.message), { cause: err, terminal: err.terminal });
    if (err.requeueAfterMs !== undefined) wrapped.requeueAfterMs = err.requeueAfterMs;
    return wrapped;
  }
  return new StageSetError(Reasons.StageFailed, named(errorMessage(err)), { cause: err });
}

/** One status entry per spec stage, keeping what is known of stages that stay. */
function initialStageStatuses(stages: Stage[], previous: StageStatus[] | undefined): StageStatus[] {
  return stages.map((stage) => {
    const known = previous?.find((s) => s.name === stage.name);
    return known ? { ...known } : { name: stage.name, phase: "Pending" };
  });
}

function refOf(stageSet: StageSet) {
  return { apiVersion: stageSet.apiVersion, kind: stageSet.kind, namespace: namespaceOf(stageSet), name: nameOf(stageSet) };
}

function keyOf(stageSet: StageSet): string {
  return `${namespaceOf(stageSet)}/${nameOf(stageSet)}`;
}

function namespaceOf(stageSet: StageSet): string {
  return stageSet.metadata.namespace ?? "";
}

function nameOf(stageSet: StageSet): string {
  return stageSet.metadata.name ?? "";
}

function labelsOf(stageSet: StageSet, stage: Stage) {
  return { namespace: namespaceOf(stageSet), stageset: nameOf(stageSet), stage: stage.name };
}

function splitKey(key: string): [string, string] {
  const slash = key.indexOf("/");
  return slash < 0 ? ["", key] : [key.slice(0, slash), key.slice(slash + 1)];
}

import type { Stage, StageSet, StageSetStatus, StageStatus } from "../api/types.js";
import { Annotations, FINALIZER } from "../api/types.js";
import { withDefaults } from "../api/defaults.js";
import { parseDuration } from "../api/duration.js";
import { validateStageSet } from "../api/validate.js";
import { AppliedStateMemo } from "../apply/drift.js";
import { listInventories } from "../apply/inventory.js";
import { teardown } from "../apply/prune.js";
import { kubeVarSource } from "../build/kube-var-source.js";
import type { InventoryMode } from "../config/flags.js";
import { errorMessage, InvalidSpecError, Reasons, StageSetError, WAITING_REASONS, type Reason } from "../errors.js";
import type { KubeClient } from "../kube/client.js";
import type { EventRecorder } from "../kube/events.js";
import type { ProcessResult } from "../kube/workqueue.js";
import type { Metrics } from "../server/metrics.js";
import type { ArtifactCache } from "../source/artifact-cache.js";
import { resolveSource, type ResolvedSource } from "../source/resolve.js";
import type { Logger } from "../util/log.js";
import { applyOutcome, findCondition, type Outcome } from "./conditions.js";
import type { Caches } from "./manager.js";
import { BuildCache } from "./build-cache.js";
import { CachedSourceReader } from "./source-reader.js";
import { fetchAndBuild, placedIds, refOfStageSet, runStage } from "./stage-run.js";
import { StatusWriter } from "./status-writer.js";
import { tenantClient } from "./tenant.js";

export interface ReconcilerOptions {
  defaultIntervalMs: number;
  requeueDependencyMs: number;
  noCrossNamespaceRefs: boolean;
  inventoryMode: InventoryMode;
  inventoryShardCap: number;
  runbookBaseUrl: string;
  /** How often a stage's health is re-read while it is verified. */
  healthPollIntervalMs?: number;
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
}

/**
 * The StageSet reconciler. One call handles one StageSet key and reads top to
 * bottom like a run: deletion → finalizer → spec check → suspend →
 * dependencies → sources → each stage in order (fetch, build, apply, prune,
 * verify) → status. Status is written at stage boundaries while a rollout is
 * under way and once at the end, each time only if it changed, so a
 * steady-state run writes nothing.
 */
export class StageSetReconciler {
  readonly #deps: ReconcilerDeps;
  readonly #sources: CachedSourceReader;
  readonly #memo = new AppliedStateMemo();
  readonly #builds = new BuildCache();
  readonly #now: () => Date;

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
    this.#sources = new CachedSourceReader(deps.caches.sources, deps.client);
    this.#now = deps.now ?? (() => new Date());
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
    if (!(original.metadata.finalizers ?? []).includes(FINALIZER)) {
      await client.patch(refOf(original), { metadata: { finalizers: [...(original.metadata.finalizers ?? []), FINALIZER] } }, "merge");
    }
    const stageSet: StageSet = { ...original, spec: withDefaults(original.spec) };
    const writer = new StatusWriter(client, original);
    const status: StageSetStatus = structuredClone(original.status ?? {});
    const generation = original.metadata.generation;
    const requestedAt = original.metadata.annotations?.[Annotations.requestedAt];
    if (requestedAt !== undefined) status.lastHandledReconcileAt = requestedAt;
    const intervals = intervalsOf(stageSet, options.defaultIntervalMs);

    const finish = async (outcome: Outcome & { inStage?: boolean }, requeueAfterMs: number | undefined): Promise<ProcessResult> => {
      const before = findCondition(original.status?.conditions, "Ready");
      status.observedGeneration = generation;
      status.conditions = applyOutcome(status.conditions ?? [], outcome, generation, options.runbookBaseUrl, this.#now);
      await writer.write(status);
      this.#recordOutcome(stageSet, outcome, before?.reason, before?.message);
      return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
    };

    // 1. A spec the API server could not check (cross-field rules) is refused before anything runs.
    const issues = validateStageSet(original);
    if (issues.length > 0) {
      const first = issues[0]!;
      return finish(stalled(Reasons.InvalidSpec, `${first.field}: ${first.message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ""}`), undefined);
    }

    // 2. Suspended: nothing is applied or pruned, unless `stagesetctl reconcile --force` asked for one run.
    if (stageSet.spec.suspend && !forcedOnce(original)) {
      return finish({ ready: "False", reason: Reasons.Suspended, message: "reconciliation is suspended (spec.suspend: true)" }, undefined);
    }

    // 3. Dependencies must be Ready at their current generation.
    const blocker = this.#dependencyBlocker(stageSet);
    if (blocker?.reason === Reasons.InvalidSpec) return finish(stalled(blocker.reason, blocker.message), undefined);
    if (blocker) return finish(waiting(blocker.reason, blocker.message), options.requeueDependencyMs);

    let tenant: Awaited<ReturnType<typeof tenantClient>> | undefined;
    try {
      // 4. Resolve every stage's source up front: a rollout starts only when all are available.
      const resolved = await this.#resolveAll(stageSet);
      status.lastAttemptedRevisions = Object.fromEntries(resolved.map((r) => [r.key, r.artifact.revision]));
      tenant = await tenantClient(client, stageSet);

      // 5. The stages, in order; stage N+1 starts only once stage N is Ready.
      const steadyState = isSteadyState(original, resolved);
      const stageStatuses = initialStageStatuses(stageSet.spec.stages, status.stages);
      status.stages = stageStatuses;
      const run: RunState = { original, stageSet, status, writer, steadyState, log, signal, resolved };
      for (const [index, stage] of stageSet.spec.stages.entries()) {
        signal.throwIfAborted();
        await this.#stage(run, index, stage, resolved[index]!, tenant.client, stageStatuses[index]!);
      }

      // 6. Stages removed from the spec: their objects go, last stage first.
      await this.#pruneRemovedStages(stageSet, tenant.client, log);

      status.lastAppliedRevisions = Object.fromEntries(resolved.map((r) => [r.key, r.artifact.revision]));
      const revisions = [...new Set(resolved.map((r) => r.artifact.revision))];
      return finish(
        {
          ready: "True",
          reason: Reasons.Succeeded,
          message: `applied ${stageSet.spec.stages.length} stage(s) at revision ${revisions.length === 1 ? revisions[0] : revisions.join(", ")}`,
        },
        intervals.next,
      );
    } catch (err) {
      if (signal.aborted) throw err;
      const failure = asStageSetError(err);
      log.info({ reason: failure.reason, err: failure.message }, "run did not complete");
      const inStage = failedInStage.has(failure);
      if (WAITING_REASONS.has(failure.reason)) return finish(waiting(failure.reason, failure.message), intervals.retry);
      if (failure.terminal) return finish({ ...stalled(failure.reason, failure.message), inStage }, undefined);
      return finish({ ready: "False", reason: failure.reason, message: failure.message, inStage }, intervals.retry);
    } finally {
      tenant?.close();
    }
  }

  /** One stage: run it, record its phase and counts, emit drift events; a failure marks it Failed and propagates. */
  async #stage(run: RunState, index: number, stage: Stage, source: ResolvedSource, tenant: KubeClient, stageStatus: StageStatus): Promise<void> {
    const { options } = this.#deps;
    const { stageSet, status, writer, steadyState } = run;
    const labels = { namespace: namespaceOf(stageSet), name: nameOf(stageSet), stage: stage.name };
    const publish = async (phase: StageStatus["phase"], message = "") => {
      stageStatus.phase = phase;
      stageStatus.message = message;
      if (steadyState) return;
      status.conditions = applyOutcome(
        status.conditions ?? [],
        { ready: "Unknown", reason: Reasons.Progressing, message: `stage "${stage.name}": ${phase.toLowerCase()} revision ${source.artifact.revision}`, reconciling: true },
        stageSet.metadata.generation,
        options.runbookBaseUrl,
        this.#now,
      );
      await writer.write(status);
    };
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
        onPhase: publish,
        healthPollIntervalMs: options.healthPollIntervalMs ?? 2_000,
        laterStageIds: () => this.#laterStageIds(run, index, tenant),
      });
      Object.assign(stageStatus, { phase: "Ready", message: "", appliedRevision: source.artifact.revision, entriesCount: result.entriesCount, shards: result.shards });
      this.#deps.metrics?.stageReady.set(labelsOf(stageSet, stage), 1);
      if (steadyState && result.changeSet.driftCorrected > 0) {
        // Only a steady-state run can call a difference drift; during a rollout it is the new revision.
        this.#deps.events.warning(run.original, "DriftCorrected", `stage "${stage.name}": corrected drift on ${result.changeSet.driftCorrected} object(s)`);
        this.#deps.metrics?.driftCorrectedTotal.inc(labels, result.changeSet.driftCorrected);
      }
      if (!steadyState) {
        this.#deps.metrics?.stageAppliedTotal.inc(labels);
        await writer.write(status);
      }
    } catch (err) {
      this.#deps.metrics?.stageReady.set(labelsOf(stageSet, stage), 0);
      const failure = asStageSetError(err, stage.name);
      if (!WAITING_REASONS.has(failure.reason)) stageStatus.phase = "Failed";
      stageStatus.message = failure.message;
      failedInStage.add(failure);
      throw failure;
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
      }).catch(() => []);
      for (const id of await placedIds(tenant, objects, namespace, stage.name)) ids.add(id);
    }
    return ids;
  }

  async #pruneRemovedStages(stageSet: StageSet, tenant: KubeClient, log: Logger): Promise<void> {
    const recorded = await listInventories(this.#deps.client, refOfStageSet(stageSet));
    const current = new Set(stageSet.spec.stages.map((s) => s.name));
    const removed = new Set([...recorded.keys()].filter((name) => !current.has(name)));
    if (removed.size === 0) return;
    const result = await teardown({ client: tenant, inventoryClient: this.#deps.client, stageSet: refOfStageSet(stageSet), onlyStages: removed });
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

  /** Deletion: tear the stages down in reverse order, then release the finalizer. */
  async #finalize(stageSet: StageSet, log: Logger): Promise<ProcessResult> {
    if (!(stageSet.metadata.finalizers ?? []).includes(FINALIZER)) return;
    const tenant = await tenantClient(this.#deps.client, stageSet).catch(() => ({ client: this.#deps.client, close: () => {} }));
    try {
      const pruneByStage = new Map((stageSet.spec.stages ?? []).map((s) => [s.name, s.prune ?? true]));
      const result = await teardown({ client: tenant.client, inventoryClient: this.#deps.client, stageSet: refOfStageSet(stageSet), pruneByStage });
      log.info({ stages: result.stages, deleted: result.deleted.length, kept: result.kept.length }, "torn down");
    } finally {
      tenant.close();
    }
    await this.#deps.client.patch(
      refOf(stageSet),
      { metadata: { finalizers: (stageSet.metadata.finalizers ?? []).filter((f) => f !== FINALIZER), resourceVersion: stageSet.metadata.resourceVersion } },
      "merge",
    );
    this.#deps.metrics?.forgetStageSet(namespaceOf(stageSet), nameOf(stageSet), (stageSet.spec.stages ?? []).map((s) => s.name));
    return;
  }

  /** Events and the reconcile counter on every Ready transition (and on a new failure message). */
  /**
   * The reconcile counter, and an event on every Ready transition (or new
   * failure message): `Succeeded`; `StageFailed` for any failure inside a
   * stage (the message names the stage and the cause); the Ready reason for
   * failures outside one and for waiting.
   */
  #recordOutcome(stageSet: StageSet, outcome: Outcome & { inStage?: boolean }, previousReason: string | undefined, previousMessage: string | undefined): void {
    this.#deps.metrics?.reconcileTotal.inc({ namespace: namespaceOf(stageSet), name: nameOf(stageSet), reason: outcome.reason });
    const message = outcome.message;
    if (outcome.reason === previousReason && previousMessage?.startsWith(message)) return;
    if (outcome.reason === Reasons.Succeeded) this.#deps.events.normal(stageSet, "Succeeded", message);
    else if (outcome.reason === Reasons.Suspended || WAITING_REASONS.has(outcome.reason)) this.#deps.events.normal(stageSet, outcome.reason, message);
    else this.#deps.events.warning(stageSet, outcome.inStage ? "StageFailed" : outcome.reason, message);
  }
}

/**
 * A forced run: the force token equals the reconcile request and that
 * request has not been handled yet (once handled, the StageSet is suspended
 * again).
 */
function forcedOnce(stageSet: StageSet): boolean {
  const annotations = stageSet.metadata.annotations ?? {};
  const token = annotations[Annotations.forceReconcile];
  return token !== undefined && token === annotations[Annotations.requestedAt] && token !== stageSet.status?.lastHandledReconcileAt;
}

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
  resolved: ResolvedSource[];
}

function waiting(reason: Reason, message: string): Outcome {
  return { ready: "False", reason, message, reconciling: true };
}

function stalled(reason: Reason, message: string): Outcome {
  return { ready: "False", reason, message, stalled: true };
}

/** Wraps unexpected errors so every failure carries a reason and names the stage. */
function asStageSetError(err: unknown, stage?: string): StageSetError {
  const named = (message: string) => (stage && !message.includes(`stage "${stage}"`) ? `stage "${stage}": ${message}` : message);
  if (err instanceof StageSetError) {
    if (named(err.message) === err.message) return err;
    return new StageSetError(err.reason, named(err.message), { cause: err, terminal: err.terminal });
  }
  return new StageSetError(Reasons.StageFailed, named(errorMessage(err)), { cause: err });
}

/**
 * A run is steady-state when the last one succeeded for this generation and
 * every source is still at the revision it applied: then only drift can
 * change anything, and progress is not published stage by stage.
 */
function isSteadyState(stageSet: StageSet, resolved: ResolvedSource[]): boolean {
  const status = stageSet.status;
  if (!status) return false;
  const ready = findCondition(status.conditions, "Ready");
  if (ready?.status !== "True" || status.observedGeneration !== stageSet.metadata.generation) return false;
  const stages = status.stages ?? [];
  return resolved.every((r, i) => stages[i]?.appliedRevision === r.artifact.revision && stages[i]?.phase === "Ready");
}

/** One status entry per spec stage, keeping what is known of stages that stay. */
function initialStageStatuses(stages: Stage[], previous: StageStatus[] | undefined): StageStatus[] {
  return stages.map((stage) => {
    const known = previous?.find((s) => s.name === stage.name);
    return known ? { ...known } : { name: stage.name, phase: "Pending" };
  });
}

function intervalsOf(stageSet: StageSet, defaultIntervalMs: number): { next: number; retry: number } {
  const parse = (value: string | undefined, field: string, fallback: number) => {
    if (!value) return fallback;
    try {
      return parseDuration(value, field);
    } catch (err) {
      throw new InvalidSpecError(errorMessage(err));
    }
  };
  const interval = parse(stageSet.spec.interval, "spec.interval", defaultIntervalMs);
  const retry = parse(stageSet.spec.retryInterval, "spec.retryInterval", interval);
  const drift = parse(stageSet.spec.driftDetectionInterval, "spec.driftDetectionInterval", interval);
  return { next: Math.min(interval, drift), retry };
}


function refOf(stageSet: StageSet) {
  return { apiVersion: stageSet.apiVersion, kind: stageSet.kind, namespace: namespaceOf(stageSet), name: nameOf(stageSet) };
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

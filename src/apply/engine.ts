import { FIELD_MANAGER, type ConflictPolicy, type KubeObject } from "../api/types.js";
import { StageFailedError, StageSetError } from "../errors.js";
import { KindNotFoundError, KubeApiError } from "../kube/errors.js";
import { forEachBounded } from "./concurrency.js";
import { retryTransient } from "./retry.js";
import { decideConflict, holdsData, isImmutableFieldError } from "./conflicts.js";
import { crdServing, isCrd, kindInfoFromCrd, waitForServedKinds } from "./crds.js";
import { ChangeSet, type ChangeAction, type ChangeSetEntry } from "./change-set.js";
import { AppliedStateMemo, holdsDesired, needsApply } from "./drift.js";
import { foldStringData, takeoverPatch } from "./managed-fields.js";
import { ConflictPolicyError, ObjectOperationError, UnknownKindError } from "./errors.js";
import { apiServerMessage } from "./messages.js";
import {
  assertNoDuplicates,
  assertWellFormed,
  describeObject,
  groupOf,
  isFoundational,
  kindKey,
  labelSelector,
  managedLabels,
  objectId,
  parseObjectId,
  placeObject,
  refOf,
  sortForApply,
  withLabels,
  type StageSetRef,
} from "./objects.js";
import type { ApplyClient, KindInfo, ObjectRef } from "./ports.js";
import { systemClock, type Clock } from "../util/clock.js";
import { pollUntil } from "../util/poll.js";

export type { ChangeAction, ChangeSetEntry } from "./change-set.js";

export interface ApplyResult {
  /** This apply's entries, one per object, in apply order (also appended to `options.changes`). */
  entries: ChangeSetEntry[];
  /** Objects that existed with this stage's labels and differed from the desired state. */
  driftCorrected: number;
  /** The objects as sent (namespaced and labelled), in apply order: the stage's new inventory. */
  applied: KubeObject[];
  /**
   * The live objects as the API server answered their apply (or listed them,
   * for those left unchanged or kept as they were), by objectId: what the
   * cluster held at this apply. Objects recreated are left out; empty for a
   * dry run.
   */
  observed: ReadonlyMap<string, KubeObject>;
}

export interface ApplyStageOptions {
  client: ApplyClient;
  stageSet: StageSetRef;
  stage: string;
  objects: readonly KubeObject[];
  conflictPolicy?: ConflictPolicy;
  /** The stage's `force: true`: Recreate unless `conflictPolicy.default` says otherwise. */
  force?: boolean;
  /** Requests in flight at once; default 10. */
  concurrency?: number;
  fieldManager?: string;
  dryRun?: boolean;
  /** Labels stamped on every object besides the managed-object labels (the ApplySet `part-of` label in hybrid mode). */
  extraLabels?: Record<string, string>;
  /** Keep one per controller process so objects the server keeps normalizing are not re-applied every run. */
  memo?: AppliedStateMemo;
  /** How long to wait for a stage's CRDs to be Established; default 60s. */
  crdTimeoutMs?: number;
  /** How long a Recreate waits for the old object to be gone; default 60s. */
  deleteTimeoutMs?: number;
  /** Times the CRD and Recreate waits; default the system clock. */
  clock?: Clock;
  /** Records each object's outcome as it happens, so a caller keeps what was done when a later object fails. */
  changes?: ChangeSet;
  /**
   * The ids in the stage's inventory before this apply. When given, only the
   * kinds and namespaces holding one of them are listed by the stage's
   * labels to find what it applied before: elsewhere there is nothing of the
   * stage to compare with, and the API server answers a labelled list by
   * scanning every object of the kind in the namespace (a first apply in a
   * namespace shared by many StageSets scanned it for nothing). Objects
   * there are looked up as new or unlabelled ones instead.
   */
  previousIds?: ReadonlySet<string>;
  /**
   * Called once with the objects as they will be sent (placed in their
   * namespaces and labelled, in apply order) after they were checked and
   * their kinds resolved, before the first one is sent; what it throws is
   * thrown and nothing is applied. syncStage records the stage's inventory
   * here, so an apply cut short (a failed object, a restart) never leaves an
   * object behind that no inventory lists. Not called for a dry run.
   */
  beforeApply?: (desired: readonly KubeObject[]) => Promise<void>;
}

const DEFAULT_CONCURRENCY = 10;

/** The live state a batch is compared with: labelled objects by id, and lookups of the rest (undefined: does not exist). */
interface LiveLookup {
  managed: Map<string, KubeObject>;
  unmanaged: Map<string, KubeObject | undefined>;
}
const DEFAULT_WAIT_MS = 60_000;

/**
 * Server-side applies one stage's objects: CRDs and Namespaces first, custom
 * resources once their CRD is Established, each object only when applying it
 * would change the live one (found by one labelled list per kind and
 * namespace, so a stage with nothing to change makes no write). An object
 * last written by client-side `kubectl apply` is taken over first (its
 * managers' ownership moved to ours), so fields the artifact drops go.
 * Throws ObjectOperationError / ConflictPolicyError / UnknownKindError naming
 * the object; what was applied before the throw is in `options.changes`.
 */
export async function applyStage(options: ApplyStageOptions): Promise<ApplyResult> {
  const run = new StageApply(options);
  return run.execute();
}

/**
 * The kinds of `objects` that one of `crds` serves, keyed by kindKey, with
 * `already` (kinds known to wait for a CRD) included.
 */
function kindsServedBy(
  crds: readonly KubeObject[],
  objects: readonly KubeObject[],
  already: ReadonlyMap<string, { apiVersion: string; kind: string }>,
): Map<string, { apiVersion: string; kind: string }> {
  const served = new Map(already);
  if (crds.length === 0) return served;
  for (const obj of objects) {
    const key = kindKey(obj.apiVersion, obj.kind);
    if (!served.has(key) && crdServing(crds, obj.apiVersion, obj.kind)) served.set(key, { apiVersion: obj.apiVersion, kind: obj.kind });
  }
  return served;
}

class StageApply {
  readonly #o: ApplyStageOptions;
  readonly #client: ApplyClient;
  readonly #memo: AppliedStateMemo;
  readonly #ownLabels: Record<string, string>;
  readonly #fieldManager: string;
  readonly #changes: ChangeSet;
  /** Kinds whose CRD this stage installs (kindKey): their first requests may race the API server's routing. */
  #awaited: ReadonlySet<string> = new Set();
  #driftCorrected = 0;
  readonly #observed = new Map<string, KubeObject>();
  #previousCollections: Set<string> | "unknown" | undefined;

  constructor(options: ApplyStageOptions) {
    this.#o = options;
    this.#client = options.client;
    this.#memo = options.memo ?? new AppliedStateMemo();
    this.#ownLabels = managedLabels(options.stageSet, options.stage);
    this.#fieldManager = options.fieldManager ?? FIELD_MANAGER;
    this.#changes = options.changes ?? new ChangeSet();
  }

  async execute(): Promise<ApplyResult> {
    const { stage } = this.#o;
    for (const obj of this.#o.objects) assertWellFormed(obj, stage);
    const { kinds, awaitingCrd } = await this.#resolveKinds();
    const labels = { ...this.#o.extraLabels, ...this.#ownLabels };
    const desired = sortForApply(
      this.#o.objects.map((obj) => {
        const info = kinds.get(kindKey(obj.apiVersion, obj.kind))!;
        return foldStringData(withLabels(placeObject(obj, info.namespaced, this.#o.stageSet.namespace, stage), labels));
      }),
    );
    assertNoDuplicates(desired, stage);
    const first = desired.filter(isFoundational);
    const rest = desired.filter((o) => !isFoundational(o));
    // With no Namespace or CRD to apply first and no kind waiting for one, the
    // live objects are read while the inventory is recorded (reads, which
    // that write cannot change) rather than after it.
    let early: Promise<LiveLookup> | undefined;
    if (!this.#o.dryRun && this.#o.beforeApply && first.length === 0 && awaitingCrd.size === 0) {
      early = this.#lookUp(rest);
      early.catch(() => undefined);
    }
    if (!this.#o.dryRun) await this.#o.beforeApply?.(desired);

    if (early) return this.#result(desired, await this.#applyBatch(rest, early));
    const entries: ChangeSetEntry[] = await this.#applyBatch(first);

    if (awaitingCrd.size > 0 && this.#o.dryRun) {
      // The kinds do not exist yet, so the server cannot dry-run their objects.
      const now = rest.filter((o) => !awaitingCrd.has(kindKey(o.apiVersion, o.kind)));
      const later = rest.filter((o) => awaitingCrd.has(kindKey(o.apiVersion, o.kind)));
      entries.push(...(await this.#applyBatch(now)));
      entries.push(...later.map((o) => this.#record(o, "created", "not dry-run: its kind is installed by this stage")));
      return this.#result(desired, entries);
    }
    const crds = first.filter(isCrd);
    // Every kind a CRD of this stage serves waits for that CRD, also when
    // discovery listed it before the apply: a CRD deleted and applied again
    // can still be listed while its deletion finishes, then not be served
    // until the new one is Established.
    const servedByStage = this.#o.dryRun ? awaitingCrd : kindsServedBy(crds, rest, awaitingCrd);
    if (servedByStage.size > 0) {
      const needed = crds.filter((crd) =>
        [...servedByStage.values()].some((k) => crdServing([crd], k.apiVersion, k.kind) !== undefined),
      );
      this.#awaited = new Set(servedByStage.keys());
      await waitForServedKinds(this.#client, needed, [...servedByStage.values()], {
        stage,
        timeoutMs: this.#o.crdTimeoutMs ?? DEFAULT_WAIT_MS,
        ...(this.#o.clock ? { clock: this.#o.clock } : {}),
      });
    }
    entries.push(...(await this.#applyBatch(rest)));
    return this.#result(desired, entries);
  }

  #result(desired: KubeObject[], entries: ChangeSetEntry[]): ApplyResult {
    return { entries, driftCorrected: this.#driftCorrected, applied: desired, observed: this.#observed };
  }

  #record(obj: KubeObject, action: ChangeAction, message?: string): ChangeSetEntry {
    return this.#changes.add(refOf(obj), action, message);
  }

  /**
   * Discovery for every kind of the stage. A kind the API server does not
   * serve yet is fine when a CRD in the same stage defines it: its objects
   * wait for that CRD.
   */
  async #resolveKinds(): Promise<{
    kinds: Map<string, KindInfo>;
    awaitingCrd: Map<string, { apiVersion: string; kind: string }>;
  }> {
    const kinds = new Map<string, KindInfo>();
    const awaitingCrd = new Map<string, { apiVersion: string; kind: string }>();
    const firstOfKind = new Map<string, KubeObject>();
    for (const obj of this.#o.objects) {
      const key = kindKey(obj.apiVersion, obj.kind);
      if (!firstOfKind.has(key)) firstOfKind.set(key, obj);
    }
    const stageCrds = this.#o.objects.filter(isCrd);
    await forEachBounded([...firstOfKind.entries()], this.#concurrency(), async ([key, obj]) => {
      try {
        kinds.set(key, await this.#client.resourceFor(obj.apiVersion, obj.kind));
      } catch (err) {
        if (!(err instanceof KindNotFoundError)) throw this.#objectError(obj, "looking up the kind of", err);
        const crd = crdServing(stageCrds, obj.apiVersion, obj.kind);
        if (!crd) {
          throw new UnknownKindError(
            objectId(obj),
            `stage "${this.#o.stage}": ${describeObject(obj)}: the API server does not serve kind ${obj.kind} in ` +
              `${obj.apiVersion} and no matching CRD installed; add its CustomResourceDefinition to this stage or an ` +
              `earlier one, or correct apiVersion/kind`,
            { cause: err },
          );
        }
        kinds.set(key, kindInfoFromCrd(crd, obj.apiVersion, obj.kind));
        awaitingCrd.set(key, { apiVersion: obj.apiVersion, kind: obj.kind });
      }
    });
    return { kinds, awaitingCrd };
  }

  /**
   * Whether `c` (a kind in a namespace) may hold objects this stage applied
   * before (see `previousIds`); always true without previousIds, or when one
   * of them is not an inventory id (a hand-edited inventory: list rather
   * than miss something).
   */
  #mayHoldPrevious(c: { apiVersion: string; kind: string; namespace?: string }): boolean {
    if (!this.#o.previousIds) return true;
    this.#previousCollections ??= collectionsOfIds(this.#o.previousIds);
    return this.#previousCollections === "unknown" || this.#previousCollections.has(`${c.namespace ?? ""}|${groupOf(c.apiVersion)}|${c.kind}`);
  }

  #concurrency(): number {
    return this.#o.concurrency ?? DEFAULT_CONCURRENCY;
  }

  /** What #applyBatch compares `objects` with: this stage's labelled objects, then those it lacks (new, or to adopt). */
  async #lookUp(objects: KubeObject[]): Promise<LiveLookup> {
    const managed = await this.#listLive(collectionsOf(objects).filter((c) => this.#mayHoldPrevious(c)), labelSelector(this.#ownLabels));
    return { managed, unmanaged: await this.#listUnmanaged(objects, managed) };
  }

  /** Applies `objects` (from `lookup`, the live state #lookUp read for them, when it was started earlier). */
  async #applyBatch(objects: KubeObject[], lookup?: Promise<LiveLookup>): Promise<ChangeSetEntry[]> {
    if (objects.length === 0) return [];
    const { managed, unmanaged } = await (lookup ?? this.#lookUp(objects));
    const results: ChangeSetEntry[] = new Array(objects.length);
    await forEachBounded(objects, this.#concurrency(), async (obj, i) => {
      const id = objectId(obj);
      results[i] = await this.#applyOne(obj, managed.get(id), unmanaged.has(id) ? unmanaged.get(id) : NOT_LOOKED_UP);
    });
    return results;
  }

  /**
   * Objects missing from this stage's labelled list are new, or exist without
   * our labels (adoption). Where many of one kind are missing (a first
   * apply), one page of the unlabelled collection, twice as long as what is
   * missing, replaces a get per object when it holds the whole collection
   * (no `continue`: an empty or small namespace). A larger collection (a
   * namespace shared with many other objects) is not read whole for a
   * stage's handful: those objects get a get each, so the cost follows the
   * stage's size, not the namespace's (reading the whole collection per
   * stage made B3 quadratic: 1.6 GB of lists for 100 StageSets sharing a
   * namespace).
   * Returns id → live object (undefined: does not exist) for what it looked up.
   */
  async #listUnmanaged(objects: KubeObject[], managed: Map<string, KubeObject>): Promise<Map<string, KubeObject | undefined>> {
    const missing = objects.filter((o) => !managed.has(objectId(o)));
    const byCollection = new Map<string, KubeObject[]>();
    for (const obj of missing) {
      const key = collectionKey(obj);
      const list = byCollection.get(key);
      if (list) list.push(obj);
      else byCollection.set(key, [obj]);
    }
    const found = new Map<string, KubeObject | undefined>();
    const worthListing = [...byCollection.values()].filter((objs) => objs.length > LIST_INSTEAD_OF_GET);
    await forEachBounded(worthListing, this.#concurrency(), async (objs) => {
      const [first] = objs as [KubeObject];
      const wanted = new Set(objs.map(objectId));
      let page: { items: KubeObject[]; continue?: string };
      try {
        const list = () =>
          retryTransient(() =>
            this.#client.list(first.apiVersion, first.kind, {
              ...(first.metadata.namespace ? { namespace: first.metadata.namespace } : {}),
              limit: Math.max(2 * objs.length, MIN_UNMANAGED_PAGE),
            }),
          );
        page = this.#awaited.has(kindKey(first.apiVersion, first.kind)) ? await this.#untilRouted(list) : await list();
      } catch {
        return; // e.g. list allowed only with a selector: fall back to a get each
      }
      if (page.continue) return; // a larger collection: a get each
      const live = new Map<string, KubeObject>();
      for (const item of page.items) live.set(objectId({ ...item, apiVersion: first.apiVersion, kind: first.kind }), item);
      for (const id of wanted) found.set(id, live.get(id));
    });
    return found;
  }

  /**
   * Runs `request` for a kind whose CRD this stage just installed. The API
   * server can list a re-created CRD's kind in discovery (and report it
   * Established) a moment before it routes requests for it; that answer is
   * "not served" (KindNotFoundError), so it is retried until the CRD wait's
   * budget runs out.
   */
  #untilRouted<T>(request: () => Promise<T>): Promise<T> {
    let notServed: KindNotFoundError | undefined;
    return pollUntil(
      this.#o.clock ?? systemClock,
      { timeoutMs: this.#o.crdTimeoutMs ?? DEFAULT_WAIT_MS, intervalMs: 200, onTimeout: () => notServed ?? new Error("the kind was not served in time") },
      async () => {
        try {
          return await request();
        } catch (err) {
          if (!(err instanceof KindNotFoundError)) throw err;
          notServed = err;
          return undefined;
        }
      },
    );
  }

  /** Live objects by id, one list per kind and namespace. */
  async #listLive(
    collections: { apiVersion: string; kind: string; namespace?: string }[],
    selector: string | undefined,
    wanted?: ReadonlySet<string>,
  ): Promise<Map<string, KubeObject>> {
    const live = new Map<string, KubeObject>();
    await forEachBounded(collections, this.#concurrency(), async (c) => {
      let list;
      const listOnce = () =>
        retryTransient(() => this.#client.listAll(c.apiVersion, c.kind, { ...c, ...(selector ? { labelSelector: selector } : {}) }));
      try {
        list = this.#awaited.has(kindKey(c.apiVersion, c.kind)) ? await this.#untilRouted(listOnce) : await listOnce();
      } catch (err) {
        const where = c.namespace ? ` in namespace ${c.namespace}` : "";
        throw new ObjectOperationError(
          `${c.kind}${where}`,
          `stage "${this.#o.stage}": listing ${c.kind} (${c.apiVersion})${where} failed: ${apiServerMessage(err)}`,
          err,
        );
      }
      for (const item of list.items) {
        const id = objectId({ ...item, apiVersion: c.apiVersion, kind: c.kind });
        if (!wanted || wanted.has(id)) live.set(id, item);
      }
    });
    return live;
  }

  async #applyOne(
    obj: KubeObject,
    listed: KubeObject | undefined,
    unmanaged: KubeObject | undefined | typeof NOT_LOOKED_UP,
  ): Promise<ChangeSetEntry> {
    if (listed && (!needsApply(obj, listed) || this.#memo.isSettled(listed, obj))) {
      this.#observe(obj, listed);
      return this.#record(obj, "unchanged");
    }
    // Not labelled for this stage: new, or existing and about to be adopted.
    let live = listed ?? (unmanaged === NOT_LOOKED_UP ? undefined : unmanaged);
    if (!listed && unmanaged === NOT_LOOKED_UP) {
      try {
        live = await retryTransient(() => this.#client.get(refOf(obj)));
      } catch (err) {
        throw this.#objectError(obj, "reading", err);
      }
    }
    try {
      if (live) await this.#takeOver(obj, live);
      await this.#send(obj);
      if (listed) this.#driftCorrected++;
      return this.#record(obj, live ? "configured" : "created");
    } catch (err) {
      if (!live || !isImmutableFieldError(err)) throw this.#objectError(obj, "applying", err);
      return this.#resolveConflict(obj, live, err);
    }
  }

  /**
   * Moves client-side `kubectl apply` ownership (and its last-applied
   * annotation) to our field manager before the apply, as Flux does; a dry
   * run only reports the object as changed.
   */
  async #takeOver(obj: KubeObject, live: KubeObject): Promise<void> {
    if (this.#o.dryRun) return;
    const patch = takeoverPatch(live, this.#fieldManager);
    if (!patch) return;
    try {
      await this.#client.patch(refOf(obj), patch, "merge");
    } catch (err) {
      throw this.#objectError(obj, "taking over (from client-side kubectl apply)", err);
    }
  }

  async #send(obj: KubeObject): Promise<void> {
    const result = await retryTransient(() =>
      this.#client.apply(obj, { fieldManager: this.#fieldManager, force: true, dryRun: this.#o.dryRun }),
    );
    if (this.#o.dryRun || !result) return;
    this.#observe(obj, result);
    // The answer still differs from what was sent (a default or a canonical
    // spelling the comparison does not know): remember it as settled.
    if (!holdsDesired(obj, result)) this.#memo.remember(result, obj);
  }

  #observe(obj: KubeObject, live: KubeObject): void {
    if (!this.#o.dryRun) this.#observed.set(objectId(obj), live);
  }

  async #resolveConflict(obj: KubeObject, live: KubeObject, err: unknown): Promise<ChangeSetEntry> {
    const { stage, conflictPolicy, force } = this.#o;
    const ref = refOf(obj);
    const what = describeObject(obj);
    const refusal = apiServerMessage(err);
    const decision = decideConflict(ref, conflictPolicy, force === true);
    switch (decision.action) {
      case "KeepExisting":
        this.#observe(obj, live);
        return this.#record(obj, "skipped", refusal);
      case "Fail":
        throw new ConflictPolicyError(
          objectId(obj),
          `stage "${stage}": ${what} cannot be changed in place: ${refusal}; add a conflictPolicy rule with action ` +
            `Recreate to replace it (or KeepExisting to leave the live object as it is)`,
          { cause: err },
        );
      case "Recreate":
        if (holdsData(ref) && !decision.allowDataLoss) {
          const by = decision.ruleIndex === undefined ? "the stage's default Recreate" : `conflictPolicy.rules[${decision.ruleIndex}]`;
          throw new ConflictPolicyError(
            objectId(obj),
            `stage "${stage}": ${what} cannot be changed in place (${refusal}) and recreating it would delete the data ` +
              `it holds, so ${by} was refused; set allowDataLoss: true on a conflictPolicy rule targeting it to accept that`,
            { cause: err },
          );
        }
        if (!this.#o.dryRun) await this.#recreate(obj, live);
        return this.#record(obj, "recreated", refusal);
    }
  }

  async #recreate(obj: KubeObject, live: KubeObject): Promise<void> {
    const ref = refOf(obj);
    const uid = live.metadata.uid;
    try {
      // Background: the object leaves the API at once; the garbage collector
      // removes its dependents (a Job's pods) afterwards.
      await this.#client.delete(ref, { propagationPolicy: "Background", ...(uid ? { preconditions: { uid } } : {}) });
      await this.#waitGone(ref, uid);
      await this.#send(obj);
    } catch (err) {
      if (err instanceof StageSetError && !(err instanceof KubeApiError)) throw err;
      throw this.#objectError(obj, "recreating", err);
    }
  }

  async #waitGone(ref: ObjectRef, uid: string | undefined): Promise<void> {
    const timeoutMs = this.#o.deleteTimeoutMs ?? DEFAULT_WAIT_MS;
    let live: KubeObject | undefined;
    await pollUntil(
      this.#o.clock ?? systemClock,
      {
        timeoutMs,
        intervalMs: 200,
        onTimeout: () => {
          const finalizers = live?.metadata.finalizers?.length ? ` (finalizers: ${live.metadata.finalizers.join(", ")})` : "";
          return new StageFailedError(
            `stage "${this.#o.stage}": ${describeObject(ref)} was deleted to be recreated but still exists after ` +
              `${timeoutMs}ms${finalizers}; the next run retries once it is gone`,
          );
        },
      },
      async () => {
        live = await this.#client.get(ref);
        return !live || (uid && live.metadata.uid !== uid) ? true : undefined;
      },
    );
  }

  #objectError(obj: KubeObject, doing: string, err: unknown): StageSetError {
    return new ObjectOperationError(
      objectId(obj),
      `stage "${this.#o.stage}": ${doing} ${describeObject(obj)} failed: ${apiServerMessage(err)}`,
      err,
    );
  }
}

const NOT_LOOKED_UP = Symbol("not looked up");
// Above this many objects of one kind and namespace missing from the labelled
// list, one list beats a get each.
const LIST_INSTEAD_OF_GET = 10;
/** The shortest page read to find unlabelled objects (see #listUnmanaged). */
const MIN_UNMANAGED_PAGE = 50;

function collectionKey(obj: KubeObject): string {
  return `${kindKey(obj.apiVersion, obj.kind)}|${obj.metadata.namespace ?? ""}`;
}

/** `namespace|group|kind` of each inventory id; "unknown" when one is not an inventory id. */
function collectionsOfIds(ids: ReadonlySet<string>): Set<string> | "unknown" {
  const collections = new Set<string>();
  for (const id of ids) {
    try {
      const { namespace, group, kind } = parseObjectId(id);
      collections.add(`${namespace}|${group}|${kind}`);
    } catch {
      return "unknown";
    }
  }
  return collections;
}

function collectionsOf(objects: readonly KubeObject[]): { apiVersion: string; kind: string; namespace?: string }[] {
  const collections = new Map<string, { apiVersion: string; kind: string; namespace?: string }>();
  for (const obj of objects) {
    const ns = obj.metadata.namespace;
    collections.set(collectionKey(obj), { apiVersion: obj.apiVersion, kind: obj.kind, ...(ns ? { namespace: ns } : {}) });
  }
  return [...collections.values()];
}

import type { KubeObject } from "../api/types.js";
import { crdServing, isCrd, kindInfoFromCrd } from "../apply/crds.js";
import { kindKey, objectId } from "../apply/objects.js";
import type { ApplyClient, KindInfo, ObjectRef } from "../apply/ports.js";
import { KindNotFoundError } from "../kube/errors.js";
import { NotADryRunError } from "./dry-run-client.js";

/** A CustomResourceDefinition rendered by a stage, and that stage. */
export interface StageCrd {
  stage: string;
  crd: KubeObject;
}

/**
 * The CRDs the stages before the current one render, in stage order. `diff`
 * collects them stage by stage: on a first install (CRDs in one stage, their
 * custom resources in a later one) the API server does not serve those kinds
 * yet, but the rollout will install them before the later stage runs.
 */
export class EarlierStageCrds {
  readonly #crds: StageCrd[] = [];

  /** Records the CRDs among a rendered stage's objects, for the stages after it. */
  addStage(stage: string, objects: readonly KubeObject[]): void {
    for (const crd of objects.filter(isCrd)) this.#crds.push({ stage, crd });
  }

  /** The first earlier CRD that serves `kind` in `apiVersion`, or undefined. */
  serving(apiVersion: string, kind: string): StageCrd | undefined {
    const crd = crdServing(
      this.#crds.map((c) => c.crd),
      apiVersion,
      kind,
    );
    return crd && this.#crds.find((c) => c.crd === crd);
  }
}

/**
 * Why an object is shown as rendered instead of as the API server would
 * answer: its kind is installed by `by` (a CRD the rollout applies first).
 */
export function notDryRunReason(kind: string, apiVersion: string, by: string, what = "not dry-run"): string {
  return `${what}: kind ${kind} (${apiVersion}) is installed by ${by}, so the API server cannot check it yet`;
}

/**
 * The apply engine's client for a stage's diff when earlier stages install
 * CRDs the API server does not serve yet. For such a kind it answers
 * discovery from the CRD, finds no live objects (none can exist before the
 * kind does), and answers a dry-run apply with the object as sent, recording
 * it in `notDryRun` (id → reason). Every other call goes to `inner`, which
 * must itself refuse writes that are not dry runs (DryRunRecorder).
 */
export class EarlierStageKindsClient implements ApplyClient {
  readonly #inner: ApplyClient;
  readonly #earlier: EarlierStageCrds;
  /** kindKey → the earlier stage whose CRD will serve it. */
  readonly #pending = new Map<string, StageCrd>();
  /** Objects of pending kinds the dry run could not check, by inventory id: why. */
  readonly notDryRun = new Map<string, string>();

  constructor(inner: ApplyClient, earlier: EarlierStageCrds) {
    this.#inner = inner;
    this.#earlier = earlier;
  }

  /**
   * Discovery; a kind the API server does not serve but an earlier stage's CRD
   * will is described from that CRD. Throws KindNotFoundError otherwise.
   */
  async resourceFor(apiVersion: string, kind: string): Promise<KindInfo> {
    try {
      return await this.#inner.resourceFor(apiVersion, kind);
    } catch (err) {
      if (!(err instanceof KindNotFoundError)) throw err;
      const earlier = this.#earlier.serving(apiVersion, kind);
      if (!earlier) throw err;
      this.#pending.set(kindKey(apiVersion, kind), earlier);
      return kindInfoFromCrd(earlier.crd, apiVersion, kind);
    }
  }

  /** As the API server serves them: a kind only an earlier stage's CRD will serve has no served versions yet. */
  servedVersions(group: string, kind: string): Promise<string[]> {
    return this.#inner.servedVersions(group, kind);
  }

  get(ref: ObjectRef): Promise<KubeObject | undefined> {
    if (this.#isPending(ref)) return Promise.resolve(undefined);
    return this.#inner.get(ref);
  }

  list(
    apiVersion: string,
    kind: string,
    options: { namespace?: string; labelSelector?: string; limit?: number },
  ): Promise<{ items: KubeObject[]; continue?: string }> {
    if (this.#isPending({ apiVersion, kind })) return Promise.resolve({ items: [] });
    return this.#inner.list(apiVersion, kind, options);
  }

  listAll(apiVersion: string, kind: string, options?: { namespace?: string; labelSelector?: string }): Promise<{ items: KubeObject[] }> {
    if (this.#isPending({ apiVersion, kind })) return Promise.resolve({ items: [] });
    return this.#inner.listAll(apiVersion, kind, options);
  }

  apply(obj: KubeObject, options: { fieldManager: string; force?: boolean; dryRun?: boolean }): Promise<KubeObject> {
    const earlier = this.#pending.get(kindKey(obj.apiVersion, obj.kind));
    if (!earlier) return this.#inner.apply(obj, options);
    if (!options.dryRun) throw new NotADryRunError(`applying ${obj.kind} ${obj.metadata.name ?? ""}`);
    this.notDryRun.set(objectId(obj), notDryRunReason(obj.kind, obj.apiVersion, `the CustomResourceDefinition ${earlier.crd.metadata.name ?? ""} of stage "${earlier.stage}"`));
    return Promise.resolve(obj);
  }

  patch(ref: ObjectRef, body: unknown, type: "merge", options?: { dryRun?: boolean }): Promise<KubeObject> {
    return this.#inner.patch(ref, body, type, options);
  }

  delete(
    ref: ObjectRef,
    options?: { propagationPolicy?: "Foreground" | "Background" | "Orphan"; preconditions?: { uid?: string }; dryRun?: boolean },
  ): Promise<boolean> {
    if (this.#isPending(ref)) {
      if (!options?.dryRun) throw new NotADryRunError(`deleting ${ref.kind} ${ref.name}`);
      return Promise.resolve(false);
    }
    return this.#inner.delete(ref, options);
  }

  #isPending(ref: { apiVersion: string; kind: string }): boolean {
    return this.#pending.has(kindKey(ref.apiVersion, ref.kind));
  }
}

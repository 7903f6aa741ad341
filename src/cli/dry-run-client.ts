import type { KubeObject } from "../api/types.js";
import { objectId } from "../apply/objects.js";
import type { ApplyClient, KindInfo, ObjectRef } from "../apply/ports.js";
import type { KubeClient } from "../kube/client.js";
import { isNotFound } from "../kube/errors.js";

/** A write reached the diff's client without `dryRun`: a bug, refused before it reaches the API server. */
export class NotADryRunError extends Error {
  constructor(what: string) {
    super(`stagesetctl diff never writes, but ${what} was attempted without dryRun`);
    this.name = "NotADryRunError";
  }
}

/**
 * The apply engine's client for `diff`: it passes reads through and records
 * every object they return (the live state), passes server-side dry-run
 * applies through and records their answers (the merged state), and refuses
 * any write that is not a dry run.
 */
export class DryRunRecorder implements ApplyClient {
  readonly #inner: KubeClient;
  /** Live objects seen, by inventory id. */
  readonly live = new Map<string, KubeObject>();
  /** Dry-run apply answers, by inventory id. */
  readonly merged = new Map<string, KubeObject>();

  constructor(inner: KubeClient) {
    this.#inner = inner;
  }

  resourceFor(apiVersion: string, kind: string): Promise<KindInfo> {
    return this.#inner.resourceFor(apiVersion, kind);
  }

  servedVersions(group: string, kind: string): Promise<string[]> {
    return this.#inner.servedVersions(group, kind);
  }

  async get(ref: ObjectRef): Promise<KubeObject | undefined> {
    const obj = await this.#inner.get(ref);
    if (obj) this.live.set(objectId(obj), obj);
    return obj;
  }

  async list(
    apiVersion: string,
    kind: string,
    options: { namespace?: string; labelSelector?: string; limit?: number },
  ): Promise<{ items: KubeObject[]; continue?: string }> {
    const page = await this.#inner.list(apiVersion, kind, options);
    for (const item of page.items) this.live.set(objectId(item), item);
    return page;
  }

  async listAll(apiVersion: string, kind: string, options?: { namespace?: string; labelSelector?: string }): Promise<{ items: KubeObject[] }> {
    const list = await this.#inner.listAll(apiVersion, kind, options);
    for (const item of list.items) this.live.set(objectId(item), item);
    return list;
  }

  async apply(obj: KubeObject, options: { fieldManager: string; force?: boolean; dryRun?: boolean }): Promise<KubeObject> {
    if (!options.dryRun) throw new NotADryRunError(`applying ${obj.kind} ${obj.metadata.name ?? ""}`);
    let result: KubeObject;
    try {
      result = await this.#inner.apply(obj, options);
    } catch (err) {
      // A namespace this same dry run "creates" does not exist, so the server
      // cannot dry-run objects inside it: they would be created as rendered.
      if (!isNotFound(err) || !(await this.#namespaceMissing(obj))) throw err;
      result = obj;
    }
    this.merged.set(objectId(obj), result);
    return result;
  }

  patch(ref: ObjectRef, body: unknown, type: "merge", options?: { dryRun?: boolean }): Promise<KubeObject> {
    if (!options?.dryRun) throw new NotADryRunError(`patching ${ref.kind} ${ref.name}`);
    return this.#inner.patch(ref, body, type, { dryRun: true });
  }

  delete(ref: ObjectRef, options?: { propagationPolicy?: "Foreground" | "Background" | "Orphan"; preconditions?: { uid?: string }; dryRun?: boolean }): Promise<boolean> {
    if (!options?.dryRun) throw new NotADryRunError(`deleting ${ref.kind} ${ref.name}`);
    return this.#inner.delete(ref, options);
  }

  async #namespaceMissing(obj: KubeObject): Promise<boolean> {
    const namespace = obj.metadata.namespace;
    if (!namespace) return false;
    return (await this.#inner.get({ apiVersion: "v1", kind: "Namespace", name: namespace })) === undefined;
  }
}

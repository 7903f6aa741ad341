import type { KubeObject } from "../api/types.js";

/**
 * The slice of the Kubernetes client the apply engine needs. `KubeClient`
 * (src/kube/client.ts) satisfies it structurally; keeping it narrow keeps the
 * engine's dependencies visible and lets the CLI pass the same client.
 */

/** Points at one object. `namespace` is ignored for cluster-scoped kinds. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

/** Where a kind lives on the API server (discovery). */
export interface KindInfo {
  /** "" for the core group. */
  group: string;
  version: string;
  kind: string;
  /** Plural resource name, e.g. `deployments`. */
  resource: string;
  namespaced: boolean;
}

export interface ApplyClient {
  /** Rejects (KindNotFoundError) when the API server does not serve the kind. */
  resourceFor(apiVersion: string, kind: string): Promise<KindInfo>;
  /**
   * The apiVersions of `group` ("" for core) that serve `kind`, the preferred
   * one first; empty when the kind is not served at all. Prune reads and
   * deletes an object through one of these when the version it was applied
   * with is no longer served.
   */
  servedVersions(group: string, kind: string): Promise<string[]>;
  /** `undefined` when the object does not exist. */
  get(ref: ObjectRef): Promise<KubeObject | undefined>;
  /** One page of a list: at most `limit` items, and `continue` when more remain. */
  list(
    apiVersion: string,
    kind: string,
    options: { namespace?: string; labelSelector?: string; limit?: number },
  ): Promise<{ items: KubeObject[]; continue?: string }>;
  /** Every page of a list. */
  listAll(apiVersion: string, kind: string, options?: { namespace?: string; labelSelector?: string }): Promise<{ items: KubeObject[] }>;
  /** Server-side apply; returns the live object. */
  apply(obj: KubeObject, options: { fieldManager: string; force?: boolean; dryRun?: boolean }): Promise<KubeObject>;
  /** A JSON merge patch (RFC 7386); returns the live object. Used to take objects over from client-side apply. */
  patch(ref: ObjectRef, body: unknown, type: "merge", options?: { dryRun?: boolean }): Promise<KubeObject>;
  /** `false` when the object was already gone. */
  delete(
    ref: ObjectRef,
    options?: { propagationPolicy?: "Foreground" | "Background" | "Orphan"; preconditions?: { uid?: string }; dryRun?: boolean },
  ): Promise<boolean>;
}

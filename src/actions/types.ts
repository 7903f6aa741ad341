import type { Action, KubeObject, SourceRef, Stage, StageSet } from "../api/types.js";
import type { KubeClient } from "../kube/client.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";

/** The three lists of a stage's `actions`. */
export const ACTION_LISTS = ["pre", "post", "onFailure"] as const;
export type ActionList = (typeof ACTION_LISTS)[number];

/** A source rendered for a `job` or `apply` action: the objects, and the revision they came from. */
export interface RenderedSource {
  objects: KubeObject[];
  revision: string;
}

/**
 * Everything one action execution may use. Side effects go through these
 * narrow parts so the executors are tested against a real API server with a
 * fake clock, and the CLI can reuse them.
 */
export interface ActionEnv {
  /** The StageSet, defaults applied. */
  stageSet: StageSet;
  stage: Stage;
  stageIndex: number;
  list: ActionList;
  /** The stage's pinned revision: a `job` names its Jobs with a short hash of it, so a new revision runs new Jobs. */
  revision: string;
  /** Every cluster operation runs as the StageSet's identity (its ServiceAccount and/or remote cluster). */
  tenant: KubeClient;
  /** Fetches and builds a source of the StageSet's namespace (plain kustomize build: no substitution, no patches). */
  render(sourceRef: SourceRef, path: string | undefined, signal: AbortSignal): Promise<RenderedSource>;
  /** `--allowed-action-hosts` globs for `http` actions. */
  allowedHosts: readonly string[];
  /** The action's budget (its `timeout`, default 5m), in ms. */
  timeoutMs: number;
  clock: Clock;
  /** Aborts on shutdown and when newer input supersedes the run (a SupersededError as reason). */
  signal: AbortSignal;
  log: Logger;
}

/** What an action did, one line for logs and events (never a Secret value). */
export interface ActionResult {
  message: string;
}

/**
 * Runs one attempt of one action. Resolves when it succeeded; rejects with a
 * StageSetError (reason StageFailed, or RBACDenied when the tenant was
 * refused) whose message names the cause, never a Secret value.
 */
export type ActionExecutor = (action: Action, env: ActionEnv) => Promise<ActionResult>;

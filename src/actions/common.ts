/**
 * What the six action executors share: how they name an action in messages,
 * how API errors become typed action errors (RBACDenied for a 403, naming the
 * verb and the object; StageFailed otherwise), where a target lives and
 * which objects it selects.
 */
import { createHash } from "node:crypto";
import { GROUP, Labels, type Action, type ActionOperation, type ActionTarget, type KubeObject } from "../api/types.js";
import { describeObject } from "../apply/objects.js";
import { errorMessage, Reasons, StageFailedError, StageSetError } from "../errors.js";
import type { KubeClient, ObjectRef } from "../kube/client.js";
import { isForbidden, isTransient, KindNotFoundError, KubeApiError } from "../kube/errors.js";
import type { ActionEnv } from "./types.js";

/** The field manager of every write an action makes. */
export { FIELD_MANAGER } from "../api/types.js";

/** Label on objects an action creates (a `job`'s Jobs): the action's name (or `h-<hash>` when the name is no label value). */
export const ACTION_LABEL = `${GROUP}/action`;
/** Label on objects an action creates: the list the action belongs to (`pre`, `post`, `onFailure`). */
export const ACTION_LIST_LABEL = `${GROUP}/action-list`;

/**
 * A request of an action was refused by the API server (HTTP 403): the
 * StageSet's identity lacks a right. Reason RBACDenied; the message names the
 * action, the verb and the object (the API server's own words included).
 */
export class ActionRBACDeniedError extends StageSetError {
  /** The verb refused, e.g. `patch`. */
  readonly verb: string;
  /** The object (or collection) refused, e.g. `ConfigMap ns/app`. */
  readonly object: string;
  constructor(message: string, verb: string, object: string, cause: unknown) {
    super(Reasons.RBACDenied, message, { cause });
    this.verb = verb;
    this.object = object;
  }
}

/** `job action "migrate"`: how messages name an action. */
export function actionLabel(operation: ActionOperation, action: Action): string {
  return `${operation} action ${JSON.stringify(action.name)}`;
}

/**
 * The spec path of `action` for InvalidSpec messages, e.g.
 * `spec.stages[2].actions.pre[0]`; `actions.<list>[name]` when the action is
 * not found in the stage (a migration's action).
 */
export function actionPath(action: Action, env: Pick<ActionEnv, "stage" | "stageIndex" | "list">): string {
  const index = env.stage.actions?.[env.list]?.findIndex((a) => a.name === action.name) ?? -1;
  const base = `spec.stages[${env.stageIndex}].actions.${env.list}`;
  return index >= 0 ? `${base}[${index}]` : `${base}[name=${JSON.stringify(action.name)}]`;
}

/** The StageSet's namespace: where targets and rendered objects without a namespace go. */
export function stageSetNamespace(env: Pick<ActionEnv, "stageSet">): string {
  return env.stageSet.metadata.namespace ?? "default";
}

/**
 * Turns a failure of one request into an action error. A 403 becomes
 * {@link ActionRBACDeniedError} naming `verb` and `object`; an error that is
 * already a StageSetError of ours keeps its reason; anything else is a
 * StageFailedError. The message is `<what>: <verb> <object>: <cause>`.
 *
 * @param what  the action, e.g. `patch action "scale"`
 * @param verb  the request's verb, e.g. `get`, `patch`, `create`
 * @param object the object or collection, e.g. `Deployment ns/web`
 */
export function requestError(what: string, verb: string, object: string, err: unknown): StageSetError {
  if (isForbidden(err)) {
    const detail = err instanceof KubeApiError ? err.serverMessage : errorMessage(err);
    return new ActionRBACDeniedError(
      `${what}: the StageSet's identity may not ${verb} ${object}: ${detail} (RBAC: grant "${verb}" on it to the StageSet's ServiceAccount)`,
      verb,
      object,
      err,
    );
  }
  if (err instanceof KindNotFoundError) {
    return new StageFailedError(`${what}: ${verb} ${object}: ${err.message}`, { cause: err });
  }
  const detail = err instanceof KubeApiError ? `${err.serverMessage} (${err.status === 0 ? err.statusReason : `HTTP ${err.status}`})` : errorMessage(err);
  return new StageFailedError(`${what}: ${verb} ${object}: ${detail}`, { cause: err });
}

/** Runs one request and maps its failure with {@link requestError}. */
export async function request<T>(what: string, verb: string, object: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw requestError(what, verb, object, err);
  }
}

/** Whether a failed request is worth trying again in a poll loop (throttling, 5xx, network). */
export function isRetryable(err: unknown): boolean {
  return isTransient(err);
}

/** A target resolved against discovery: where it lives and how to read it. */
export interface ResolvedTarget {
  apiVersion: string;
  kind: string;
  /** Undefined for cluster-scoped kinds. */
  namespace: string | undefined;
  name?: string;
  selector?: string;
  /** `Deployment ns/web` or `Deployment in ns with labels app=web`. */
  description: string;
}

/**
 * Where a target lives: its namespace (the StageSet's when omitted; none for
 * a cluster-scoped kind). Throws the typed action error when discovery fails
 * or does not serve the kind.
 */
export async function resolveTarget(client: KubeClient, what: string, target: ActionTarget, env: ActionEnv): Promise<ResolvedTarget> {
  const info = await request(what, "discover", `${target.kind} (${target.apiVersion})`, () =>
    client.resourceFor(target.apiVersion, target.kind),
  );
  const namespace = info.namespaced ? (target.namespace ?? stageSetNamespace(env)) : undefined;
  const resolved: ResolvedTarget = { apiVersion: target.apiVersion, kind: target.kind, namespace, description: "" };
  if (target.name !== undefined) {
    resolved.name = target.name;
    resolved.description = describeObject(refTo(resolved, target.name));
  } else {
    resolved.selector = target.selector ?? "";
    const kind = describeObject({ apiVersion: target.apiVersion, kind: target.kind, name: "" }).trimEnd();
    resolved.description = `${kind} objects${namespace ? ` in namespace ${namespace}` : ""} with labels ${resolved.selector}`;
  }
  return resolved;
}

/** The reference of object `name` of a resolved target. */
export function refTo(target: Pick<ResolvedTarget, "apiVersion" | "kind" | "namespace">, name: string): ObjectRef {
  const ref: ObjectRef = { apiVersion: target.apiVersion, kind: target.kind, name };
  if (target.namespace) ref.namespace = target.namespace;
  return ref;
}

/**
 * The objects a target selects, read now: the named object (none when it does
 * not exist), or every object matching the selector. Throws the typed action
 * error when a request fails.
 */
export async function selectTargets(client: KubeClient, what: string, target: ResolvedTarget, signal?: AbortSignal): Promise<KubeObject[]> {
  if (target.name !== undefined) {
    const ref = refTo(target, target.name);
    const live = await request(what, "get", target.description, () => client.get(ref));
    return live ? [live] : [];
  }
  const list = await request(what, "list", target.description, () =>
    client.listAll(target.apiVersion, target.kind, {
      ...(target.namespace ? { namespace: target.namespace } : {}),
      labelSelector: target.selector,
      signal,
    }),
  );
  return list.items;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** `value` when it is a valid label value (≤ 63 characters, alphanumeric ends), else `h-<12 hex of its sha256>`. */
export function labelValue(value: string): string {
  if (value.length <= 63 && LABEL_VALUE.test(value)) return value;
  return `h-${shortHash(value, 12)}`;
}

/** The first `length` hex digits of the sha256 of `text`. */
export function shortHash(text: string, length = 8): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/**
 * The labels of objects an action creates: the StageSet's name and namespace,
 * the stage, the action and its list. They select "the Jobs of this action"
 * for history cleanup.
 */
export function actionLabels(action: Action, env: Pick<ActionEnv, "stageSet" | "stage" | "list">): Record<string, string> {
  return {
    [Labels.ownerName]: env.stageSet.metadata.name ?? "",
    [Labels.ownerNamespace]: stageSetNamespace(env),
    [Labels.stage]: labelValue(env.stage.name),
    [ACTION_LABEL]: labelValue(action.name),
    [ACTION_LIST_LABEL]: env.list,
  };
}

/** Truncates user-controlled text (a termination message, a response body) for a one-line message. */
export function clip(text: string, max = 512): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}

/**
 * The `apply` action: a transient server-side apply of the objects rendered
 * from its `sourceRef` (+`path`), as the tenant, with the controller's field
 * manager. The objects are never recorded in an inventory, so they are never
 * pruned (pair the action with a `delete`). With `wait: true` it waits until
 * every object is Current by kstatus within the action's timeout.
 */
import type { ApplyAction, KubeObject } from "../api/types.js";
import { describeObject, sortForApply } from "../apply/objects.js";
import { StageFailedError, StageSetError } from "../errors.js";
import { computeStatus, HealthStatus } from "../health/kstatus.js";
import { formatDuration } from "../health/wait.js";
import type { ObjectRef } from "../kube/client.js";
import { pollUntil } from "../util/poll.js";
import { actionLabel, FIELD_MANAGER, isRetryable, request, stageSetNamespace } from "./common.js";
import type { ActionEnv, ActionExecutor, RenderedSource } from "./types.js";

/** How often the applied objects are read while waiting for them to be Current, in ms. */
export const APPLY_WAIT_INTERVAL_MS = 1_000;

/**
 * The `apply` executor. Rejects with the render's own error when the source
 * cannot be fetched or built, an RBACDenied error naming `apply` and the
 * object when the tenant may not write it, a StageFailedError naming the
 * object and the API server's answer when an apply fails, and (with `wait`)
 * a StageFailedError naming the objects not Current, or Failed, by kstatus.
 */
export const applyExecutor: ActionExecutor = async (action, env) => {
  const spec = action.apply as ApplyAction;
  const what = actionLabel("apply", action);
  const rendered = await renderSource(what, env, spec.sourceRef, spec.path);
  if (rendered.objects.length === 0) return { message: `the source rendered no objects (revision ${rendered.revision})` };

  const refs: ObjectRef[] = [];
  for (const obj of sortForApply(rendered.objects)) {
    env.signal.throwIfAborted();
    const placed = await placeIn(what, env, obj);
    const description = describeObject(placed);
    await request(what, "apply", description, () => env.tenant.apply(stripServerFields(placed), { fieldManager: FIELD_MANAGER, force: true }));
    const ref: ObjectRef = { apiVersion: placed.apiVersion, kind: placed.kind, name: placed.metadata.name ?? "" };
    if (placed.metadata.namespace) ref.namespace = placed.metadata.namespace;
    refs.push(ref);
  }
  if (!spec.wait) return { message: `applied ${refs.length} object(s) of revision ${rendered.revision}` };

  let pending: string[] = [];
  await pollUntil(
    env.clock,
    {
      timeoutMs: env.timeoutMs,
      intervalMs: APPLY_WAIT_INTERVAL_MS,
      signal: env.signal,
      onTimeout: () =>
        new StageFailedError(
          `${what}: not Current within ${formatDuration(env.timeoutMs)}: ${pending.slice(0, 5).join("; ")}${pending.length > 5 ? ` and ${pending.length - 5} more` : ""}`,
        ),
    },
    async () => {
      const notReady: string[] = [];
      for (const ref of refs) {
        const description = describeObject(ref);
        let live: KubeObject | undefined;
        try {
          live = await request(what, "get", description, () => env.tenant.get(ref));
        } catch (err) {
          if (isRetryable((err as { cause?: unknown }).cause)) {
            notReady.push(`${description} could not be read`);
            continue;
          }
          throw err;
        }
        if (!live) {
          notReady.push(`${description} does not exist`);
          continue;
        }
        const status = computeStatus(live, { now: env.clock.now() });
        if (status.status === HealthStatus.Failed) {
          throw new StageFailedError(`${what}: ${description} failed: ${status.message}`);
        }
        if (status.status !== HealthStatus.Current) notReady.push(`${description} is ${status.status}${status.message ? ` (${status.message})` : ""}`);
      }
      pending = notReady;
      return notReady.length === 0 ? true : undefined;
    },
  );
  return { message: `applied ${refs.length} object(s) of revision ${rendered.revision}, all Current` };
};

/**
 * Renders a source for an action. Errors of ours (ArtifactFailed,
 * BuildFailed, SourceNotReady, …) pass unchanged; anything else becomes a
 * StageFailedError naming the action and the source.
 */
export async function renderSource(
  what: string,
  env: ActionEnv,
  sourceRef: Parameters<ActionEnv["render"]>[0],
  path: string | undefined,
): Promise<RenderedSource> {
  try {
    return await env.render(sourceRef, path, env.signal);
  } catch (err) {
    if (err instanceof StageSetError || env.signal.aborted) throw err;
    const kind = sourceRef.kind ?? "ExternalArtifact";
    throw new StageFailedError(`${what}: rendering ${kind} ${sourceRef.namespace ?? stageSetNamespace(env)}/${sourceRef.name}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** The object in its namespace: the StageSet's when a namespaced object names none. */
export async function placeIn(what: string, env: ActionEnv, obj: KubeObject): Promise<KubeObject> {
  if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) {
    throw new StageFailedError(`${what}: a rendered object lacks apiVersion, kind or metadata.name (${obj.kind ?? "<no kind>"} ${obj.metadata?.name ?? "<no name>"})`, {
      terminal: true,
    });
  }
  const info = await request(what, "discover", `${obj.kind} (${obj.apiVersion})`, () => env.tenant.resourceFor(obj.apiVersion, obj.kind));
  if (!info.namespaced) {
    if (!obj.metadata.namespace) return obj;
    const { namespace: _ignored, ...metadata } = obj.metadata;
    return { ...obj, metadata };
  }
  if (obj.metadata.namespace) return obj;
  return { ...obj, metadata: { ...obj.metadata, namespace: stageSetNamespace(env) } };
}

/** Fields the server owns, which an apply must not send. */
function stripServerFields(obj: KubeObject): KubeObject {
  const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, managedFields: _mf, generation: _g, ...metadata } = obj.metadata;
  const { status: _status, ...rest } = obj;
  return { ...rest, metadata } as KubeObject;
}

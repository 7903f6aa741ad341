/**
 * The `delete` action: deletes the target object (by name) or every object the
 * target's label selector matches, as the tenant, and waits until they are
 * gone (finalizers done) within the action's timeout. An object that is
 * already gone counts as success.
 */
import type { DeleteAction, KubeObject } from "../api/types.js";
import { describeObject } from "../apply/objects.js";
import { StageFailedError } from "../errors.js";
import { formatDuration } from "../health/wait.js";
import type { ObjectRef } from "../kube/client.js";
import { pollUntil } from "../util/poll.js";
import { actionLabel, isRetryable, refTo, request, resolveTarget, selectTargets } from "./common.js";
import type { ActionExecutor } from "./types.js";

/** How often deleted objects are read again while waiting for them to go, in ms. */
export const DELETE_POLL_INTERVAL_MS = 500;

/**
 * The `delete` executor. Resolves when every targeted object is gone (a
 * replacement with another uid counts as gone). Rejects with an RBACDenied
 * error naming `delete` (or `get`/`list`) and the object when the tenant
 * lacks the right, and with a StageFailedError naming the objects still
 * there and their finalizers when the timeout passes.
 */
export const deleteExecutor: ActionExecutor = async (action, env) => {
  const spec = action.delete as DeleteAction;
  const what = actionLabel("delete", action);
  const target = await resolveTarget(env.tenant, what, spec.target, env);

  let victims: { ref: ObjectRef; uid: string | undefined }[];
  if (target.name !== undefined) {
    victims = [{ ref: refTo(target, target.name), uid: undefined }];
  } else {
    victims = (await selectTargets(env.tenant, what, target, env.signal)).map((o) => ({
      ref: refTo(target, o.metadata.name ?? ""),
      uid: o.metadata.uid,
    }));
  }
  const deleted: typeof victims = [];
  for (const victim of victims) {
    env.signal.throwIfAborted();
    const existed = await request(what, "delete", describeObject(victim.ref), () =>
      env.tenant.delete(victim.ref, { propagationPolicy: "Background" }),
    );
    if (existed) deleted.push(victim);
  }
  if (deleted.length === 0) {
    return { message: target.name !== undefined ? `${target.description} was already gone` : `no ${target.description} to delete` };
  }

  let still: KubeObject[] = [];
  await pollUntil(
    env.clock,
    {
      timeoutMs: env.timeoutMs,
      intervalMs: DELETE_POLL_INTERVAL_MS,
      signal: env.signal,
      onTimeout: () => {
        const named = still.slice(0, 5).map((o) => {
          const finalizers = o.metadata.finalizers ?? [];
          const ref = refTo(target, o.metadata.name ?? "");
          return finalizers.length ? `${describeObject(ref)} (finalizers: ${finalizers.join(", ")})` : describeObject(ref);
        });
        const more = still.length > 5 ? ` and ${still.length - 5} more` : "";
        return new StageFailedError(
          `${what}: ${named.join(", ")}${more} still exist ${formatDuration(env.timeoutMs)} after deletion`,
        );
      },
    },
    async () => {
      const remaining: KubeObject[] = [];
      for (const victim of deleted) {
        let live: KubeObject | undefined;
        try {
          live = await request(what, "get", describeObject(victim.ref), () => env.tenant.get(victim.ref));
        } catch (err) {
          if (isRetryable((err as { cause?: unknown }).cause)) return undefined;
          throw err;
        }
        // Still being deleted (finalizers); gone, or re-created under the same name (no deletionTimestamp), is done.
        if (live?.metadata.deletionTimestamp && (victim.uid === undefined || live.metadata.uid === victim.uid)) remaining.push(live);
      }
      still = remaining;
      return remaining.length === 0 ? true : undefined;
    },
  );
  const shown = target.name !== undefined ? target.description : `${deleted.length} ${target.description}`;
  return { message: `deleted ${shown}` };
};

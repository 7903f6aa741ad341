/**
 * The `wait` action: a fixed `duration` on the clock, or until the CEL
 * expression `expr` over the `target` object (read as the tenant) is true.
 * The expression sees the object as health expressions do (src/health/cel.ts:
 * its top-level fields and `self`).
 */
import { parseDuration } from "../api/duration.js";
import type { Action, KubeObject, WaitAction } from "../api/types.js";
import { InvalidSpecError, StageFailedError } from "../errors.js";
import { compileCelPredicate } from "../health/cel.js";
import { formatDuration } from "../health/wait.js";
import { pollUntil } from "../util/poll.js";
import { actionLabel, actionPath, isRetryable, resolveTarget, selectTargets } from "./common.js";
import type { ActionEnv, ActionExecutor, ActionResult } from "./types.js";

/** How often the target is read while waiting for `expr`, in ms. */
export const WAIT_POLL_INTERVAL_MS = 1_000;

/**
 * The `wait` executor. Rejects with an InvalidSpecError naming the field when
 * `expr` does not compile, the duration does not parse or exceeds the
 * action's timeout, or neither shape is given; a StageFailedError naming the
 * object, the expression and what it last saw when the timeout passes; an
 * RBACDenied error when the tenant may not read the target. Aborting
 * `env.signal` ends the wait with the signal's reason.
 */
export const waitExecutor: ActionExecutor = async (action, env) => {
  const spec = action.wait as WaitAction;
  const path = `${actionPath(action, env)}.wait`;
  if (spec.duration !== undefined) return waitDuration(action, env, spec.duration, path);
  if (spec.target === undefined || spec.expr === undefined) {
    throw new InvalidSpecError(`${path}: set duration, or target and expr together`);
  }
  return waitExpr(action, env, spec, path);
};

async function waitDuration(action: Action, env: ActionEnv, text: string, path: string): Promise<ActionResult> {
  const ms = parseDuration(text, `${path}.duration`);
  if (ms > env.timeoutMs) {
    throw new InvalidSpecError(
      `${path}.duration: ${text} is longer than the action's timeout (${formatDuration(env.timeoutMs)}): raise ${actionPath(action, env)}.timeout`,
    );
  }
  await env.clock.sleep(ms, env.signal);
  return { message: `waited ${formatDuration(ms)}` };
}

async function waitExpr(action: Action, env: ActionEnv, spec: WaitAction, path: string): Promise<ActionResult> {
  const what = actionLabel("wait", action);
  const predicate = compileCelPredicate(spec.expr!, `${path}.expr`);
  const target = await resolveTarget(env.tenant, what, spec.target!, env);
  let last = "it was not read yet";
  await pollUntil(
    env.clock,
    {
      timeoutMs: env.timeoutMs,
      intervalMs: WAIT_POLL_INTERVAL_MS,
      signal: env.signal,
      onTimeout: () =>
        new StageFailedError(
          `${what}: ${JSON.stringify(spec.expr)} on ${target.description} was not true within ${formatDuration(env.timeoutMs)} (${last})`,
        ),
    },
    async () => {
      let objects: KubeObject[];
      try {
        objects = await selectTargets(env.tenant, what, target, env.signal);
      } catch (err) {
        if (isRetryable((err as { cause?: unknown }).cause)) {
          last = `reading it failed: ${(err as Error).message}`;
          return undefined;
        }
        throw err;
      }
      if (objects.length === 0) {
        last = "the object does not exist";
        return undefined;
      }
      for (const object of objects) {
        const outcome = predicate.evaluate(object);
        if (!outcome.ok) {
          last = `the expression failed: ${outcome.error}`;
          return undefined;
        }
        if (!outcome.value) {
          last = "the expression was false";
          return undefined;
        }
      }
      return true;
    },
  );
  return { message: `${JSON.stringify(spec.expr)} is true on ${target.description}` };
}

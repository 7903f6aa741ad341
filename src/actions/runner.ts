import type { Action } from "../api/types.js";
import { parseDuration } from "../api/duration.js";
import { errorMessage, Reasons, StageSetError } from "../errors.js";
import type { ActionLedger } from "./ledger.js";
import type { ActionEnv, ActionExecutor, ActionList, ActionResult } from "./types.js";

/** An action's default budget (CONTRACT "Actions"). */
export const DEFAULT_ACTION_TIMEOUT_MS = 5 * 60_000;

/** Hooks the controller uses for events, metrics and progress; all optional. */
export interface ActionHooks {
  started?(list: ActionList, action: Action, attempt: number): void | Promise<void>;
  succeeded?(list: ActionList, action: Action, result: ActionResult, seconds: number): void;
  failed?(list: ActionList, action: Action, error: StageSetError, seconds: number): void;
}

export interface RunListOptions {
  list: ActionList;
  actions: readonly Action[];
  /** The environment without the per-action parts (list, timeout). */
  env: Omit<ActionEnv, "list" | "timeoutMs">;
  ledger: ActionLedger;
  executorFor(action: Action): ActionExecutor;
  hooks?: ActionHooks;
}

/**
 * A failed action: reason StageFailed (or the executor's reason, e.g.
 * RBACDenied), message naming the stage, the list, the action and the cause.
 */
export class ActionFailedError extends StageSetError {
  constructor(
    readonly stage: string,
    readonly list: ActionList,
    readonly action: string,
    cause: StageSetError,
    attempts: number,
  ) {
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : "";
    super(cause.reason === Reasons.RBACDenied ? Reasons.RBACDenied : Reasons.StageFailed, `stage "${stage}": ${list} action "${action}" failed${tries}: ${cause.message}`, {
      cause,
    });
  }
}

/**
 * Runs one list of actions in order. An action the ledger holds for this
 * revision is skipped; every other runs up to `retries + 1` times within
 * its own `timeout` per attempt, and is recorded in the ledger (status
 * written) before the next one starts. The first action that still fails
 * ends the list with an ActionFailedError. An abort of `env.signal`
 * (shutdown, superseded input) propagates as the signal's reason.
 */
export async function runActionList(options: RunListOptions): Promise<void> {
  const { list, env, ledger } = options;
  for (const action of options.actions) {
    env.signal.throwIfAborted();
    if (ledger.has(list, action.name)) continue;
    await runWithRetries(options, action);
    await ledger.record(list, action.name);
  }
}

/**
 * Runs the `onFailure` list best-effort after a stage failed: every action
 * the ledger does not hold runs (with its retries), a failure does not stop
 * the others; returns the failures (empty when all succeeded).
 */
export async function runOnFailure(options: Omit<RunListOptions, "list">): Promise<ActionFailedError[]> {
  const failures: ActionFailedError[] = [];
  for (const action of options.actions) {
    if (options.env.signal.aborted) break;
    if (options.ledger.has("onFailure", action.name)) continue;
    try {
      await runWithRetries({ ...options, list: "onFailure" }, action);
      await options.ledger.record("onFailure", action.name);
    } catch (err) {
      if (options.env.signal.aborted) break;
      failures.push(err instanceof ActionFailedError ? err : new ActionFailedError(options.env.stage.name, "onFailure", action.name, asStageSetError(err), 1));
    }
  }
  return failures;
}

async function runWithRetries(options: RunListOptions, action: Action): Promise<ActionResult> {
  const { list, env, hooks } = options;
  const attempts = Math.max(0, action.retries ?? 0) + 1;
  const timeoutMs = action.timeout ? parseDuration(action.timeout, `${list} action "${action.name}" timeout`) : DEFAULT_ACTION_TIMEOUT_MS;
  const execute = options.executorFor(action);
  let last: StageSetError | undefined;
  let tried = 0;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    tried = attempt;
    env.signal.throwIfAborted();
    await hooks?.started?.(list, action, attempt);
    const started = env.clock.monotonic();
    try {
      const result = await execute(action, { ...env, list, timeoutMs });
      hooks?.succeeded?.(list, action, result, (env.clock.monotonic() - started) / 1000);
      return result;
    } catch (err) {
      if (env.signal.aborted) throw env.signal.reason;
      last = asStageSetError(err);
      hooks?.failed?.(list, action, last, (env.clock.monotonic() - started) / 1000);
      // A refused identity or an invalid action does not heal by retrying.
      if (last.reason === Reasons.RBACDenied || last.reason === Reasons.InvalidSpec) break;
    }
  }
  throw new ActionFailedError(env.stage.name, list, action.name, last!, tried);
}

function asStageSetError(err: unknown): StageSetError {
  return err instanceof StageSetError ? err : new StageSetError(Reasons.StageFailed, errorMessage(err), { cause: err });
}

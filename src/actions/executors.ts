/**
 * The executor of each action operation (job, http, wait, patch, delete,
 * apply), chosen by the one operation an action sets.
 */
import { ACTION_OPERATIONS, type Action, type ActionOperation } from "../api/types.js";
import { InvalidSpecError } from "../errors.js";
import { applyExecutor } from "./apply.js";
import { deleteExecutor } from "./delete.js";
import { createHttpExecutor, httpExecutor, type HttpExecutorOptions } from "./http.js";
import { jobExecutor } from "./job.js";
import { patchExecutor } from "./patch.js";
import type { ActionExecutor } from "./types.js";
import { waitExecutor } from "./wait.js";

export interface ExecutorOptions {
  /** For `http`: how host names are resolved (tests inject one). */
  http?: HttpExecutorOptions;
}

/** The operation `action` sets. Throws InvalidSpecError when it sets none or several. */
export function operationOf(action: Action): ActionOperation {
  const set = ACTION_OPERATIONS.filter((operation) => action[operation] !== undefined && action[operation] !== null);
  if (set.length !== 1) {
    const found = set.length === 0 ? "none is set" : `found ${set.join(", ")}`;
    throw new InvalidSpecError(
      `action ${JSON.stringify(action.name)}: an action performs exactly one operation (${ACTION_OPERATIONS.join(", ")}); ${found}`,
    );
  }
  return set[0]!;
}

/**
 * A table of executors by operation. `options` replace parts for tests
 * (the DNS resolver of `http`).
 */
export function createExecutors(options: ExecutorOptions = {}): Record<ActionOperation, ActionExecutor> {
  return {
    job: jobExecutor,
    http: options.http ? createHttpExecutor(options.http) : httpExecutor,
    wait: waitExecutor,
    patch: patchExecutor,
    delete: deleteExecutor,
    apply: applyExecutor,
  };
}

const DEFAULT_EXECUTORS = createExecutors();

/**
 * The executor for `action`'s operation (see types.ts ActionExecutor for what
 * it resolves and rejects with). Throws InvalidSpecError when the action sets
 * no operation or several.
 */
export function executorFor(action: Action): ActionExecutor {
  return DEFAULT_EXECUTORS[operationOf(action)];
}

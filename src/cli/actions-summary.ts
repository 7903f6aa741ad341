import type { Action, ActionTarget, Stage, StageStatus } from "../api/types.js";

const LISTS = ["pre", "post", "onFailure"] as const;

/**
 * The actions a rollout of `stage` at `revision` would run, one line each:
 * `<list> <name> <operation> <what>`. Actions the stage's ledger already
 * records for that revision are left out (a retry never re-runs them).
 * `onFailure` actions are listed too: they run only if the rollout fails.
 */
export function actionsToRun(stage: Stage, status: StageStatus | undefined, revision: string | undefined): string[] {
  const done = new Set(revision !== undefined && status?.ledgerRevision === revision ? (status.executedActions ?? []) : []);
  const lines: string[] = [];
  for (const list of LISTS) {
    for (const action of stage.actions?.[list] ?? []) {
      if (done.has(action.name) || done.has(`${list}/${action.name}`)) continue;
      lines.push(`${list} ${action.name} ${describeOperation(action)}`);
    }
  }
  return lines;
}

export function describeOperation(action: Action): string {
  if (action.job) return `job ${action.job.sourceRef.name}${action.job.path ? ` ${action.job.path}` : ""}`;
  if (action.http) return `http ${action.http.method && action.http.method !== "POST" ? `${action.http.method} ` : ""}${action.http.url}`;
  if (action.wait) {
    if (action.wait.duration) return `wait ${action.wait.duration}`;
    return `wait ${describeTarget(action.wait.target)}${action.wait.expr ? ` until ${action.wait.expr}` : ""}`;
  }
  if (action.patch) return `patch ${describeTarget(action.patch.target)}`;
  if (action.delete) return `delete ${describeTarget(action.delete.target)}`;
  if (action.apply) return `apply ${action.apply.sourceRef.name}${action.apply.path ? ` ${action.apply.path}` : ""}`;
  return "(no operation)";
}

function describeTarget(target: ActionTarget | undefined): string {
  if (!target) return "?";
  const where = target.namespace ? `${target.namespace}/` : "";
  return target.name ? `${target.kind} ${where}${target.name}` : `${target.kind} ${where}(${target.selector ?? ""})`;
}

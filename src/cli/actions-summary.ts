import type { Stage, StageStatus } from "../api/types.js";
import { describeOperation } from "../actions/describe.js";

export { describeOperation };

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

import type { Action, ActionTarget } from "../api/types.js";

/** `job db-migrations ./jobs`, `http https://…`, `patch Service shop/web`: one action's operation and target, for messages and `diff`. */
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

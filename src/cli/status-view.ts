import type { Condition, StageSet } from "../api/types.js";
import { formatTable } from "./table.js";

const NONE = "-";

export function readyCondition(stageSet: StageSet): Condition | undefined {
  return stageSet.status?.conditions?.find((c) => c.type === "Ready");
}

/** `2/3`: stages Ready out of the stages in the spec. */
export function stagesColumn(stageSet: StageSet): string {
  const names = new Set((stageSet.spec?.stages ?? []).map((s) => s.name));
  const ready = (stageSet.status?.stages ?? []).filter((s) => names.has(s.name) && s.phase === "Ready").length;
  return `${ready}/${names.size}`;
}

/** `held until <time>` while an update window holds a rollout, else `-`. */
export function pendingColumn(stageSet: StageSet): string {
  const pending = stageSet.status?.pendingUpdate;
  if (!pending) return NONE;
  return pending.nextWindowOpens ? `held until ${pending.nextWindowOpens}` : "held";
}

/** The `get` list: NAMESPACE (with -A) NAME READY REASON STAGES VERSION PENDING. */
export function stageSetTable(stageSets: readonly StageSet[], allNamespaces: boolean): string {
  const header = ["NAME", "READY", "REASON", "STAGES", "VERSION", "PENDING"];
  const rows = [...stageSets]
    .sort((a, b) => key(a).localeCompare(key(b)))
    .map((stageSet) => {
      const ready = readyCondition(stageSet);
      const row = [
        stageSet.metadata.name ?? "",
        ready?.status ?? "Unknown",
        ready?.reason || NONE,
        stagesColumn(stageSet),
        stageSet.status?.version || NONE,
        pendingColumn(stageSet),
      ];
      return allNamespaces ? [stageSet.metadata.namespace ?? "", ...row] : row;
    });
  return formatTable(allNamespaces ? ["NAMESPACE", ...header] : header, rows);
}

/** One StageSet's detail: the Ready condition and message, then per stage its phase, revision, executed actions and message. */
export function stageSetDetail(stageSet: StageSet): string {
  const status = stageSet.status ?? {};
  const ready = readyCondition(stageSet);
  const generation = stageSet.metadata.generation;
  const fields: [string, string][] = [
    ["Name", stageSet.metadata.name ?? ""],
    ["Namespace", stageSet.metadata.namespace ?? ""],
    ["Ready", ready ? `${ready.status} (${ready.reason})` : "Unknown (not reconciled yet)"],
    ["Message", ready?.message || NONE],
    ["Version", status.version || NONE],
    ["Pending", pendingColumn(stageSet)],
  ];
  if (stageSet.spec?.suspend) fields.push(["Suspended", "true"]);
  if (generation !== undefined && status.observedGeneration !== generation) {
    fields.push(["Observed", `generation ${status.observedGeneration ?? "none"} of ${generation} (the controller has not caught up with the spec yet)`]);
  }
  const migrations = [
    status.pendingMigrations?.length ? `pending ${status.pendingMigrations.join(", ")}` : "",
    status.executedMigrations?.length ? `executed ${status.executedMigrations.join(", ")}` : "",
  ].filter(Boolean);
  if (migrations.length > 0) fields.push(["Migrations", migrations.join("; ")]);
  const held = Object.entries(status.pendingUpdate?.revisions ?? {});
  if (held.length > 0) fields.push(["Held", held.map(([source, revision]) => `${source} at ${revision}`).join(", ")]);
  if (status.lastHandledUpdateOverride) fields.push(["Update-now", `last honoured ${status.lastHandledUpdateOverride}`]);
  if (status.lastHandledReconcileAt) fields.push(["Last request", status.lastHandledReconcileAt]);
  if (status.lastRollback?.message) fields.push(["Rolled back", `${status.lastRollback.at ?? ""}: ${status.lastRollback.message}`]);
  const parked = Object.entries(status.parkedRevisions ?? {});
  if (parked.length > 0) {
    fields.push(["Parked", `${parked.map(([source, revision]) => `${source} at ${revision}`).join(", ")} (not retried until a new revision, a spec change or reconcile --force)`]);
  }
  const width = Math.max(...fields.map(([label]) => label.length)) + 2;
  const head = fields.map(([label, value]) => `${`${label}:`.padEnd(width)}${value}`).join("\n");

  const statusByName = new Map((status.stages ?? []).map((s) => [s.name, s]));
  const rows = (stageSet.spec?.stages ?? []).map((stage) => {
    const s = statusByName.get(stage.name);
    return [
      stage.name,
      s?.phase ?? "Pending",
      s?.appliedRevision || NONE,
      s?.entriesCount === undefined ? NONE : String(s.entriesCount),
      s?.executedActions?.length ? s.executedActions.join(",") : NONE,
      s?.message || NONE,
    ];
  });
  return `${head}\n\nStages:\n${indent(formatTable(["STAGE", "PHASE", "REVISION", "OBJECTS", "ACTIONS", "MESSAGE"], rows))}`;
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => (line ? `  ${line}` : line))
    .join("\n");
}

function key(stageSet: StageSet): string {
  return `${stageSet.metadata.namespace ?? ""}/${stageSet.metadata.name ?? ""}`;
}

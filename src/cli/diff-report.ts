import type { KubeObject, StageStatus } from "../api/types.js";
import { describeObject } from "../apply/objects.js";
import { actionsToRun } from "./actions-summary.js";
import type { ObjectChange, StageChanges } from "./changes.js";
import type { Painter } from "./color.js";
import { diffLines, hasChanges, toHunks, type DiffLine } from "./diff-text.js";
import { hideFingerprints, maskSecretForDiff } from "./secrets.js";
import { toYaml } from "./yaml-output.js";

export interface DiffReportOptions {
  showSecrets: boolean;
  showUnchanged: boolean;
  /** Show objects that would be pruned. */
  prune: boolean;
  paint: Painter;
  /** The StageSet's status per stage name: decides whether a stage rolls out a new revision. */
  stageStatus: ReadonlyMap<string, StageStatus>;
}

export interface DiffReport {
  text: string;
  /** Anything would change: an object, a prune, or actions to run. */
  changed: boolean;
}

// Set by the API server on every write; they would make every object look changed.
const VOLATILE_METADATA = ["managedFields", "resourceVersion", "uid", "generation", "creationTimestamp"];

/**
 * The text of `stagesetctl diff`: a unified diff per changed object
 * (`--- live` / `+++ merged`, one `@@ Kind ns/name @@` section per hunk),
 * a line per object that would be pruned, then the actions a rollout would
 * run. Secret values are masked but still compared.
 */
export function renderDiffReport(stages: readonly StageChanges[], options: DiffReportOptions): DiffReport {
  const { paint } = options;
  const body: string[] = [];
  const actions: string[] = [];
  let changed = false;
  for (const stage of stages) {
    let stageChanged = false;
    for (const change of stage.objects) {
      const section = objectSection(change, options);
      if (section.changed) stageChanged = true;
      body.push(...section.lines);
    }
    if (options.prune) {
      for (const ref of stage.pruned) {
        body.push(paint("removed", `- ${describeObject(ref)} (pruned: fell out of inventory)`));
        stageChanged = true;
      }
    }
    const appliedRevision = options.stageStatus.get(stage.stage.name)?.appliedRevision;
    const newRevision = stage.revision !== undefined && stage.revision !== appliedRevision;
    if (stageChanged || newRevision) {
      const lines = actionsToRun(stage.stage, options.stageStatus.get(stage.stage.name), stage.revision);
      if (lines.length > 0) actions.push(`  ${stage.stage.name}:`, ...lines.map((line) => `    ${line}`));
    }
    changed ||= stageChanged || actions.length > 0;
  }
  const out: string[] = [];
  if (body.length > 0) out.push(paint("header", "--- live"), paint("header", "+++ merged"), ...body);
  if (actions.length > 0) {
    if (out.length > 0) out.push("");
    out.push("Actions to run:", ...actions);
  }
  return { text: out.length > 0 ? `${out.join("\n")}\n` : "", changed };
}

function objectSection(change: ObjectChange, options: DiffReportOptions): { lines: string[]; changed: boolean } {
  const { paint } = options;
  const name = describeObject(change.ref);
  const before = change.kind === "create" ? [] : displayLines(change.live ?? change.merged, options.showSecrets);
  const after = displayLines(change.merged, options.showSecrets);
  const script = diffLines(before, after);
  const changed = change.kind !== "unchanged" && change.kind !== "kept" && (hasChanges(script) || change.kind === "recreate");
  if (!changed) {
    if (!options.showUnchanged) return { lines: [], changed: false };
    const why = change.kind === "kept" ? `unchanged: kept as it is by the conflict policy${change.note ? ` (${change.note})` : ""}` : "unchanged";
    return { lines: [paint("hunk", `@@ ${name} (${why}) @@`), ...after.map((text) => ` ${hideFingerprints(text)}`)], changed: false };
  }
  const label = change.kind === "create" ? (change.notDryRun ? ` (created, ${change.notDryRun})` : " (created)") : change.kind === "recreate" ? ` (recreated${change.note ? `: ${change.note}` : ""})` : "";
  const hunks = hasChanges(script) ? toHunks(script) : [];
  const lines: string[] = [];
  if (hunks.length === 0) lines.push(paint("hunk", `@@ ${name}${label} @@`));
  for (const hunk of hunks) {
    lines.push(paint("hunk", `@@ ${name}${label} @@`));
    lines.push(...hunk.lines.map((line) => formatLine(line, paint)));
  }
  return { lines, changed: true };
}

function formatLine(line: DiffLine, paint: Painter): string {
  const text = `${line.op}${hideFingerprints(line.text)}`;
  if (line.op === "-") return paint("removed", text);
  if (line.op === "+") return paint("added", text);
  return text;
}

function displayLines(obj: KubeObject, showSecrets: boolean): string[] {
  const shown = showSecrets ? obj : maskSecretForDiff(obj);
  const { status: _status, apiVersion, kind, metadata: fullMetadata, ...rest } = shown;
  const metadata = { ...fullMetadata } as Record<string, unknown>;
  for (const key of VOLATILE_METADATA) delete metadata[key];
  // List items get apiVersion and kind appended client-side; a fixed head keeps both sides in one order.
  return toYaml({ apiVersion, kind, metadata, ...rest }).replace(/\n$/, "").split("\n");
}

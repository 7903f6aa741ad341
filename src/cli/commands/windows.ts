import type { StageSet } from "../../api/types.js";
import { canonicalTimeZone, formatCalendar, isTimeZone, parseRfc3339 } from "../../gating/calendar.js";
import { compileWindows, describeWindow, nextOpenings, updateGate, windowIssues, SEARCH_MAX_STEPS, type CompiledWindow } from "../../gating/windows.js";
import { InvalidManifestFileError, UsageError } from "../errors.js";
import { describeStageSet, loadStageSet } from "../stageset-input.js";
import { formatTable } from "../table.js";
import type { CommandContext } from "./context.js";

export interface WindowsFlags {
  filename?: string;
  /** How many openings to list. */
  next: string;
  /** Plan from this RFC 3339 instant instead of the current time. */
  now?: string;
  /** The viewer's zone, instead of TZ or the system's. */
  timeZone?: string;
}

const MAX_OPENINGS = 100;
const SEARCH_BOUND = `400 days or ${SEARCH_MAX_STEPS} window boundaries`;

/**
 * `windows NAME | -f FILE`: when will this ship? Whether updates may roll out
 * at the given instant (and what holds them), `status.pendingUpdate`, and the
 * next openings in each window's zone and the viewer's.
 */
export async function runWindows(ctx: CommandContext, name: string | undefined, flags: WindowsFlags): Promise<number> {
  const count = parseCount(flags.next);
  const nowMs = flags.now === undefined ? Date.now() : parseNow(flags.now);
  const viewerZone = viewerTimeZone(flags.timeZone, ctx.io.env);
  const usage = `${ctx.program} windows NAME (a StageSet in the cluster) or ${ctx.program} windows -f FILE (a manifest)`;
  const stageSet = await loadStageSet({ name, file: flags.filename }, ctx.connection, usage, ctx.program);
  const issues = windowIssues(stageSet.spec.updateWindows, "spec.updateWindows");
  if (issues.length > 0) {
    if (flags.filename) throw new InvalidManifestFileError(flags.filename, issues);
    const lines = issues.map((issue) => `  ${issue.field}: ${issue.message}`);
    throw new UsageError(`StageSet ${describeStageSet(stageSet)} has invalid update windows (the controller holds it as InvalidSpec):\n${lines.join("\n")}`);
  }
  const windows = compileWindows(stageSet.spec.updateWindows);
  ctx.io.out(windowsReport(stageSet, windows, { nowMs, count, viewerZone, planned: flags.now !== undefined }));
  return 0;
}

interface ReportOptions {
  nowMs: number;
  count: number;
  viewerZone: string;
  /** The instant came from --now. */
  planned: boolean;
}

function windowsReport(stageSet: StageSet, windows: readonly CompiledWindow[], options: ReportOptions): string {
  const { nowMs, viewerZone } = options;
  const fields: [string, string][] = [["StageSet", describeStageSet(stageSet)]];
  fields.push([options.planned ? "At (--now)" : "Now", `${formatCalendar(nowMs, viewerZone)} (${viewerZone})`]);
  const pending = pendingText(stageSet);
  if (windows.length === 0) {
    fields.push(["Updates", "always allowed: the StageSet has no update windows"]);
    if (pending) fields.push(["Pending", pending]);
    return `${block(fields)}\n`;
  }
  const gate = updateGate(windows, nowMs);
  fields.push(["Scope", scopeText(stageSet.spec.windowScope)]);
  if (gate.allowed) {
    fields.push(["Updates", "allowed"]);
  } else {
    const opens = gate.nextOpensAt === undefined ? `no opening within the search bound (${SEARCH_BOUND})` : `next allowed ${formatCalendar(gate.nextOpensAt, viewerZone)}`;
    fields.push(["Updates", `held by ${gate.heldBy ?? "an update window"}; ${opens}`]);
  }
  if (pending) fields.push(["Pending", pending]);

  const sections = [block(fields), `Windows:\n${windows.map((w) => `  ${describeWindow(w)}`).join("\n")}`];
  const openings = nextOpenings(windows, nowMs, options.count);
  // One row per zone an opening is shown in: yours first, then each window's.
  const zones = [...new Set([viewerZone, ...windows.map((w) => w.timeZone)])];
  const rows = openings.flatMap((o, i) =>
    zones.map((zone, z) => [
      z === 0 ? String(i + 1) : "",
      z === 0 ? `${zone} (yours)` : zone,
      o.openNow ? "now" : formatCalendar(o.opensAt, zone),
      o.closesAt === undefined ? "open-ended" : formatCalendar(o.closesAt, zone),
      z > 0 ? "" : o.closesAt === undefined ? "-" : formatSpan(o.closesAt - o.opensAt),
    ]),
  );
  const header = ["#", "ZONE", "OPENS", "CLOSES", "LASTS"];
  const title = openings.length === 0 ? `No opening within the search bound (${SEARCH_BOUND}).` : `Next ${openings.length === 1 ? "opening" : `${openings.length} openings`}:`;
  const table = openings.length === 0 ? "" : `\n${indent(formatTable(header, rows))}`;
  const shortfall =
    openings.length > 0 && openings.length < options.count && openings.at(-1)!.closesAt !== undefined ? `\n  (no further opening within the search bound: ${SEARCH_BOUND})` : "";
  sections.push(`${title}${table}${shortfall}`);
  return `${sections.join("\n\n")}\n`;
}

/** `default/app at v2, …; the controller expects the next window at …` from status.pendingUpdate. */
function pendingText(stageSet: StageSet): string | undefined {
  const pending = stageSet.status?.pendingUpdate;
  if (!pending) return undefined;
  const revisions = Object.entries(pending.revisions ?? {}).map(([source, revision]) => `${source} at ${revision}`);
  const held = revisions.length > 0 ? `${revisions.join(", ")} held` : "revisions held";
  const opens = pending.nextWindowOpens ? `; the controller expects the next window at ${pending.nextWindowOpens}` : "";
  return `${held} (status.pendingUpdate)${opens}`;
}

function scopeText(scope: string | undefined): string {
  return scope === "All"
    ? "All (a closed window is a hard freeze: drift correction pauses too)"
    : "Updates (a closed window holds new revisions; drift correction continues)";
}

/** `2d16h`, `7h`, `3h30m`, `45m`. */
function formatSpan(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  const parts: [number, string][] = [
    [Math.floor(minutes / 1440), "d"],
    [Math.floor((minutes % 1440) / 60), "h"],
    [minutes % 60, "m"],
  ];
  return parts.filter(([value]) => value > 0).map(([value, unit]) => `${value}${unit}`).join("") || "0m";
}

function parseCount(text: string): number {
  const count = Number(text);
  if (!/^\d+$/.test(text) || count < 1 || count > MAX_OPENINGS) {
    throw new UsageError(`--next ${text}: give how many openings to list, a whole number from 1 to ${MAX_OPENINGS}`);
  }
  return count;
}

function parseNow(text: string): number {
  const ms = parseRfc3339(text);
  if (ms === undefined) throw new UsageError(`--now ${text}: not an RFC 3339 time; write e.g. 2026-12-24T09:00:00Z or 2026-12-24T09:00:00+01:00`);
  return ms;
}

/** --time-zone, else TZ when it names a zone, else the system's zone. */
function viewerTimeZone(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  if (flag !== undefined) {
    if (!isTimeZone(flag)) throw new UsageError(`--time-zone ${flag}: not an IANA time zone; use a name such as UTC, Europe/Berlin or America/New_York`);
    return canonicalTimeZone(flag);
  }
  const tz = env.TZ;
  if (tz && isTimeZone(tz)) return canonicalTimeZone(tz);
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

function block(fields: readonly [string, string][]): string {
  const width = Math.max(...fields.map(([label]) => label.length)) + 2;
  return fields.map(([label, value]) => `${`${label}:`.padEnd(width)}${value}`).join("\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => (line ? `  ${line}` : line))
    .join("\n")
    .trimEnd();
}

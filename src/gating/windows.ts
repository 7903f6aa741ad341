/**
 * The update-window algebra (CONTRACT `updateWindows`): which instants allow
 * the rollout of a new revision, and when the next such instant comes. Pure:
 * every function takes the time as ms since the epoch and reads no clock.
 *
 * A window is active on the half-open interval [start, start + duration)
 * (absolute windows: [from, to)). With no windows updates are always allowed;
 * with any Allow window, only inside an active Allow; an active Deny always
 * wins. `duration` is elapsed time, not wall-clock time.
 *
 * A schedule is matched by croner against the wall clock of the window's
 * zone, and each matching reading is mapped to an instant here (calendar.ts):
 * a start in the hour a spring-forward skips happens once, shifted by the
 * jump (02:30 → 03:30 CEST); a start in the hour a fall-back repeats happens
 * once, the first time the clock shows it. croner's own `timezone` option is
 * not used: it reads wall clocks through the process's local zone and skips
 * starts that fall into that zone's DST gap.
 */
import { Cron } from "croner";
import { InvalidDurationError, parseDuration } from "../api/duration.js";
import { Rules } from "../api/rules.js";
import type { UpdateWindow } from "../api/types.js";
import { childPath, type ValidationIssue } from "../api/validate-schema.js";
import { InvalidSpecError } from "../errors.js";
import { canonicalTimeZone, formatRfc3339, fromWallClock, isTimeZone, parseRfc3339, toWallClock } from "./calendar.js";

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/**
 * How far ahead `updateGate` and `nextOpenings` look for the next opening or
 * closing: 400 days, so a yearly window is always found. Beyond it the answer
 * is "none known" (undefined).
 */
export const SEARCH_HORIZON_MS = 400 * DAY_MS;

/**
 * The most window boundaries one search steps over. Each step jumps to the end
 * of the active Deny occurrences or to the next Allow start, so only windows
 * that chain many short occurrences (a 2m Deny every minute) exhaust it; the
 * search then answers "none known" early instead of burning CPU.
 */
export const SEARCH_MAX_STEPS = 1000;

const SEARCH_BOUND_TEXT = `the search bound (400 days or ${SEARCH_MAX_STEPS} window boundaries)`;

/** An update window checked and ready to evaluate; `field` names it in messages (`spec.updateWindows[0]`). */
export type CompiledWindow = RecurringWindow | AbsoluteWindow;

interface WindowBase {
  readonly type: "Allow" | "Deny";
  /** The window's path, e.g. `spec.updateWindows[0]`. */
  readonly field: string;
  /** The zone the schedule runs in and times are shown in: the window's `timeZone`, else UTC. */
  readonly timeZone: string;
  readonly source: UpdateWindow;
}

export interface RecurringWindow extends WindowBase {
  readonly kind: "recurring";
  readonly schedule: string;
  readonly durationMs: number;
  /** The schedule on wall-clock time (UTC-offset 0); see nextRecurringStart. */
  readonly cron: Cron;
}

export interface AbsoluteWindow extends WindowBase {
  readonly kind: "absolute";
  readonly fromMs: number;
  readonly toMs: number;
}

/** Whether a rollout may start at an instant, and if not, why and until when. */
export interface UpdateGate {
  allowed: boolean;
  /** When held: what holds, as a noun phrase that reads after "held by" in the status message. */
  heldBy?: string;
  /** When held: the earliest instant (ms) at which updates are allowed; undefined when none lies within SEARCH_HORIZON_MS. */
  nextOpensAt?: number;
  /** When a Deny window holds: the instant (ms) it stops covering, the one `heldBy` names; undefined without an end in the search bound. */
  holdEndsAt?: number;
}

/** An interval during which updates are allowed: [opensAt, closesAt), in ms. */
export interface Opening {
  opensAt: number;
  /** Undefined: no closing within the search horizon (open-ended). */
  closesAt?: number;
  /** Updates were already allowed at the instant the search started from (`opensAt` is that instant). */
  openNow?: true;
}

/**
 * Checks the windows and compiles them for evaluation. `windows` is
 * `spec.updateWindows` (undefined: no windows); `field` is its path in
 * messages. Throws InvalidSpecError naming each bad field and the fix.
 */
export function compileWindows(windows: readonly UpdateWindow[] | undefined, field = "spec.updateWindows"): CompiledWindow[] {
  const issues = windowIssues(windows, field);
  const compiled: CompiledWindow[] = [];
  if (issues.length === 0) {
    (windows ?? []).forEach((window, i) => {
      const path = childPath(field, i);
      const base = { type: window.type, field: path, timeZone: window.timeZone === undefined ? "UTC" : canonicalTimeZone(window.timeZone), source: window };
      if (window.type !== "Allow" && window.type !== "Deny") {
        issues.push({ field: childPath(path, "type"), message: `${JSON.stringify(window.type)} is not a window type: use Allow or Deny` });
      } else if (isString(window.schedule) && isString(window.duration) && window.from === undefined && window.to === undefined) {
        compiled.push({ ...base, kind: "recurring", schedule: window.schedule, durationMs: parseDuration(window.duration), cron: wallClockCron(window.schedule) });
      } else if (isString(window.from) && isString(window.to) && window.schedule === undefined && window.duration === undefined) {
        compiled.push({ ...base, kind: "absolute", fromMs: parseRfc3339(window.from)!, toMs: parseRfc3339(window.to)! });
      } else {
        issues.push({ field: path, message: Rules.windowShape.message });
      }
    });
  }
  if (issues.length > 0) throw new InvalidSpecError(issues.map((issue) => `${issue.field}: ${issue.message}`).join("; "));
  return compiled;
}

/**
 * Every problem of `spec.updateWindows` the schema cannot see: a schedule
 * that is not a 5-field cron expression or never fires, an unknown time zone,
 * a duration of zero, a `from`/`to` that is not RFC 3339 or out of order.
 * `windows` may be anything (malformed input yields no crash, only what can
 * be checked); `field` is its path, e.g. `spec.updateWindows`. The shape rule
 * (schedule+duration or from+to) is validate.ts's.
 */
export function windowIssues(windows: unknown, field: string): ValidationIssue[] {
  if (!Array.isArray(windows)) return [];
  const issues: ValidationIssue[] = [];
  windows.forEach((window: unknown, i) => {
    if (typeof window !== "object" || window === null || Array.isArray(window)) return;
    const w = window as Record<string, unknown>;
    const path = childPath(field, i);
    const report = (key: string, message: string) => issues.push({ field: childPath(path, key), message });
    if (isString(w.schedule)) {
      const problem = scheduleProblem(w.schedule);
      if (problem) report("schedule", problem);
    }
    if (isString(w.timeZone) && !isTimeZone(w.timeZone)) {
      report("timeZone", `${JSON.stringify(w.timeZone)} is not an IANA time zone: use a name such as UTC, Europe/Berlin or America/New_York`);
    }
    if (isString(w.duration)) {
      const problem = durationProblem(w.duration);
      if (problem) report("duration", problem);
    }
    const from = isString(w.from) ? parseRfc3339(w.from) : undefined;
    const to = isString(w.to) ? parseRfc3339(w.to) : undefined;
    for (const [key, value, parsed] of [["from", w.from, from], ["to", w.to, to]] as const) {
      if (isString(value) && parsed === undefined) {
        report(key, `${JSON.stringify(value)} is not an RFC 3339 time: write e.g. 2026-12-24T00:00:00Z or 2026-12-24T00:00:00+01:00`);
      }
    }
    if (from !== undefined && to !== undefined && from >= to) report("to", Rules.windowOrder.message);
  });
  return issues;
}

/**
 * Whether updates may roll out at `nowMs` (ms since the epoch). No windows:
 * allowed. Held: `heldBy` names the holding window (the active Deny lasting
 * longest, with the instant it stops covering, in its zone), or the Allow
 * windows, none open; `nextOpensAt` is the earliest allowed instant ≥ nowMs
 * within SEARCH_HORIZON_MS and SEARCH_MAX_STEPS.
 */
export function updateGate(windows: readonly CompiledWindow[], nowMs: number): UpdateGate {
  const clock = new WindowClock(windows);
  const state = clock.stateAt(nowMs);
  if (clock.allows(state)) return { allowed: true };
  const limit = nowMs + SEARCH_HORIZON_MS;
  const nextOpensAt = clock.searchOpening(nowMs, limit);
  const allows = windows.filter((w) => w.type === "Allow");
  let heldBy = allows.length === 1 ? `${describeWindow(allows[0]!)}, not open now` : `the ${allows.length} Allow windows, none open now`;
  const holder = latestEnding(state.denies);
  let holdEndsAt: number | undefined;
  if (holder) {
    holdEndsAt = clock.coverageEnd([holder.window], nowMs, limit);
    const end = holdEndsAt === undefined ? `with no end within ${SEARCH_BOUND_TEXT}` : `until ${formatRfc3339(holdEndsAt, holder.window.timeZone)}`;
    heldBy = `${describeWindow(holder.window)} ${end}`;
  }
  return { allowed: false, heldBy, ...(nextOpensAt !== undefined ? { nextOpensAt } : {}), ...(holdEndsAt !== undefined ? { holdEndsAt } : {}) };
}

/**
 * The next `count` intervals from `fromMs` (ms) during which updates are
 * allowed, in order. The first has `openNow` when updates are allowed at
 * fromMs. Openings and closings are searched up to fromMs + SEARCH_HORIZON_MS;
 * the list ends early when no further opening is known.
 */
export function nextOpenings(windows: readonly CompiledWindow[], fromMs: number, count: number): Opening[] {
  const clock = new WindowClock(windows);
  const limit = fromMs + SEARCH_HORIZON_MS;
  const openings: Opening[] = [];
  let t = fromMs;
  while (openings.length < count) {
    const opensAt = clock.allows(clock.stateAt(t)) ? t : clock.searchOpening(t, limit);
    if (opensAt === undefined) break;
    const closesAt = clock.searchClosing(opensAt, limit);
    openings.push({ opensAt, ...(closesAt !== undefined ? { closesAt } : {}), ...(opensAt === fromMs ? { openNow: true as const } : {}) });
    if (closesAt === undefined) break;
    t = closesAt;
  }
  return openings;
}

/**
 * A window as messages and the CLI name it: `Deny window spec.updateWindows[0]
 * ("0 9 * * MON-FRI" for 8h, Europe/Berlin)` or `Deny window
 * spec.updateWindows[1] (2026-12-24T00:00:00Z to 2026-12-27T00:00:00Z)`.
 */
export function describeWindow(window: CompiledWindow): string {
  const detail =
    window.kind === "recurring"
      ? `${JSON.stringify(window.schedule)} for ${window.source.duration}, ${window.timeZone}`
      : `${window.source.from} to ${window.source.to}`;
  return `${window.type} window ${window.field} (${detail})`;
}

interface Active {
  window: CompiledWindow;
  start: number;
  end: number;
}

interface GateState {
  denies: Active[];
  allows: Active[];
}

/** Evaluates a set of windows at instants, remembering croner's answers for the duration of one search. */
class WindowClock {
  readonly #denies: readonly CompiledWindow[];
  readonly #allows: readonly CompiledWindow[];
  readonly #nextRuns = new Map<CompiledWindow, Map<number, number | undefined>>();

  constructor(windows: readonly CompiledWindow[]) {
    this.#denies = windows.filter((w) => w.type === "Deny");
    this.#allows = windows.filter((w) => w.type === "Allow");
  }

  stateAt(t: number): GateState {
    return { denies: this.#active(this.#denies, t), allows: this.#active(this.#allows, t) };
  }

  allows(state: GateState): boolean {
    return state.denies.length === 0 && (this.#allows.length === 0 || state.allows.length > 0);
  }

  /** The earliest allowed instant in [from, limit], or undefined. */
  searchOpening(from: number, limit: number): number | undefined {
    let t = from;
    for (let step = 0; step < SEARCH_MAX_STEPS && t <= limit; step++) {
      // Every instant before the latest end of the active Denies is denied; with none active,
      // nothing can open before an Allow starts.
      const denies = this.#active(this.#denies, t);
      if (denies.length > 0) {
        t = Math.max(...denies.map((a) => a.end));
      } else if (this.#allows.length === 0 || this.#active(this.#allows, t).length > 0) {
        return t;
      } else {
        t = this.#earliestStart(this.#allows, t) ?? Infinity;
      }
    }
    return undefined;
  }

  /** The first instant after `openAt` (an allowed instant) at which updates are held, or undefined when not within limit. */
  searchClosing(openAt: number, limit: number): number | undefined {
    const denyStarts = this.#earliestStart(this.#denies, openAt);
    if (this.#allows.length === 0) return denyStarts;
    return this.coverageEnd(this.#allows, openAt, limit, denyStarts);
  }

  /**
   * The first instant ≥ t at which none of `windows` is active, or `stopAt`
   * if that comes first; undefined when neither is found within limit.
   */
  coverageEnd(windows: readonly CompiledWindow[], t: number, limit: number, stopAt = Infinity): number | undefined {
    let covered = t;
    for (let step = 0; step < SEARCH_MAX_STEPS && covered <= limit; step++) {
      if (stopAt <= covered) return stopAt;
      const active = this.#active(windows, covered);
      if (active.length === 0) return covered;
      covered = Math.max(...active.map((a) => a.end));
    }
    return stopAt <= covered ? stopAt : undefined;
  }

  #active(windows: readonly CompiledWindow[], t: number): Active[] {
    const active: Active[] = [];
    for (const window of windows) {
      const occurrence = this.#occurrenceAt(window, t);
      if (occurrence) active.push(occurrence);
    }
    return active;
  }

  /** The window's occurrence covering t that ends latest. */
  #occurrenceAt(window: CompiledWindow, t: number): Active | undefined {
    if (window.kind === "absolute") return window.fromMs <= t && t < window.toMs ? { window, start: window.fromMs, end: window.toMs } : undefined;
    const start = this.#latestStart(window, t - window.durationMs, t);
    return start === undefined ? undefined : { window, start, end: start + window.durationMs };
  }

  /** The latest start of a recurring window in (low, high]. */
  #latestStart(window: RecurringWindow, low: number, high: number): number | undefined {
    let start = this.#nextStart(window, low);
    if (start === undefined || start > high) return undefined;
    for (let i = 0; i < 4; i++) {
      const next = this.#nextStart(window, start);
      if (next === undefined || next > high) return start;
      start = next;
    }
    // Many starts within one duration (a window much longer than its period):
    // bisect to a minute before the last one instead of walking every start.
    let below = start - 1; // a start lies in (below, high]
    let above = high; // none lies in (above, high]
    while (above - below > MINUTE_MS) {
      const middle = Math.floor((below + above) / 2);
      const next = this.#nextStart(window, middle);
      if (next !== undefined && next <= high) below = middle;
      else above = middle;
    }
    start = this.#nextStart(window, below)!;
    for (let next = this.#nextStart(window, start); next !== undefined && next <= high; next = this.#nextStart(window, start)) start = next;
    return start;
  }

  /** The window's first start strictly after t. */
  #nextStart(window: CompiledWindow, t: number): number | undefined {
    if (window.kind === "absolute") return window.fromMs > t ? window.fromMs : undefined;
    let memo = this.#nextRuns.get(window);
    if (!memo) this.#nextRuns.set(window, (memo = new Map()));
    if (memo.has(t)) return memo.get(t);
    const answer = nextRecurringStart(window, t);
    memo.set(t, answer);
    return answer;
  }

  #earliestStart(windows: readonly CompiledWindow[], t: number): number | undefined {
    let earliest: number | undefined;
    for (const window of windows) {
      const start = this.#nextStart(window, t);
      if (start !== undefined && (earliest === undefined || start < earliest)) earliest = start;
    }
    return earliest;
  }
}

/** A recurring window's first start strictly after t (ms). */
function nextRecurringStart(window: RecurringWindow, t: number): number | undefined {
  const zone = window.timeZone;
  if (zone === "UTC") return window.cron.nextRun(new Date(t))?.getTime();
  const wallNow = toWallClock(t, zone);
  // Just after a spring-forward, readings in the skipped hour still map to instants after t; look back over them.
  const jumped = Math.max(0, wallNow - t - (toWallClock(t - DAY_MS, zone) - (t - DAY_MS)));
  let wall = wallNow - jumped;
  let earliest: number | undefined;
  for (;;) {
    const next = window.cron.nextRun(new Date(wall));
    if (next === null) return earliest;
    wall = next.getTime();
    const { ms, skipped } = fromWallClock(wall, zone);
    if (ms <= t) continue;
    if (earliest === undefined || ms < earliest) earliest = ms;
    // Instants grow with the readings except across a skipped hour, whose shifted starts can come after
    // later readings' starts: keep looking until the first reading that is not skipped.
    if (!skipped) return earliest;
  }
}

function latestEnding(active: readonly Active[]): Active | undefined {
  return active.reduce<Active | undefined>((best, a) => (best === undefined || a.end > best.end ? a : best), undefined);
}

const CRON_FIELDS = [
  { name: "minute", names: [] },
  { name: "hour", names: [] },
  { name: "day-of-month", names: [] },
  { name: "month", names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"] },
  { name: "day-of-week", names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] },
] as const;

const CRON_EXAMPLE = `e.g. "0 9 * * MON-FRI" (09:00 on weekdays)`;

/**
 * What is wrong with a schedule, or undefined. Only standard 5-field cron is
 * accepted: croner also reads seconds, `?` (the time of parsing), `L`, `W`
 * and `#`, which other cron implementations and the spec do not have.
 */
function scheduleProblem(schedule: string): string | undefined {
  const quoted = JSON.stringify(schedule);
  const fields = schedule.trim().split(/\s+/).filter((f) => f !== "");
  if (fields.length !== 5) {
    return `${quoted} has ${fields.length} field${fields.length === 1 ? "" : "s"}: write a 5-field cron expression (minute hour day-of-month month day-of-week), ${CRON_EXAMPLE}; seconds, years and @-shortcuts are not supported`;
  }
  for (const [i, field] of fields.entries()) {
    const spec = CRON_FIELDS[i]!;
    const rest = field.replace(/[A-Za-z]+/g, (word) => ((spec.names as readonly string[]).includes(word.toUpperCase()) ? "0" : "\u0000"));
    if (!/^[0-9*,/-]+$/.test(rest)) {
      const names = spec.names.length > 0 ? ` or names (${spec.names[0]}-${spec.names.at(-1)})` : "";
      return `${quoted}: the ${spec.name} field ${JSON.stringify(field)} is not standard cron: use numbers${names}, *, ranges (1-5), lists (1,3) and steps (*/15)`;
    }
  }
  let cron: Cron;
  try {
    cron = wallClockCron(schedule);
  } catch (err) {
    const detail = (err instanceof Error ? err.message : String(err)).replace(/^CronPattern: /, "");
    return `${quoted} is not a valid cron expression (${detail}): ${CRON_EXAMPLE}`;
  }
  if (cron.nextRun(new Date(Date.UTC(2000, 0, 1))) === null) return `${quoted} never matches a date (like February 30): pick a day that exists`;
  return undefined;
}

function durationProblem(duration: string): string | undefined {
  try {
    if (parseDuration(duration) <= 0) return `${JSON.stringify(duration)} must be longer than zero, e.g. 8h`;
  } catch (err) {
    return err instanceof InvalidDurationError ? err.problem : String(err);
  }
  return undefined;
}

/** croner on readings of a wall clock written as UTC (croner rejects leading and trailing blanks; cron does not). */
function wallClockCron(schedule: string): Cron {
  return new Cron(schedule.trim().split(/\s+/).join(" "), { paused: true, utcOffset: 0 });
}

function isString(value: unknown): value is string {
  return typeof value === "string";
}

/**
 * Time-zone arithmetic on top of Intl for update windows and their calendar:
 * zone validation, RFC 3339 parsing and formatting an instant (ms since the
 * epoch) as wall-clock time in an IANA zone.
 */

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

const DAY_MS = 24 * 60 * 60_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Whether `name` is a time zone Intl knows (an IANA name such as `Europe/Berlin`, or `UTC`). */
export function isTimeZone(name: string): boolean {
  try {
    wallClockFormatter(name);
    return true;
  } catch {
    return false;
  }
}

/** Intl's canonical spelling of a valid zone (`utc` and `Etc/UTC` become `UTC`). Throws RangeError for an unknown zone. */
export function canonicalTimeZone(name: string): string {
  return wallClockFormatter(name).resolvedOptions().timeZone;
}

/**
 * Parses an RFC 3339 timestamp (`2026-12-24T00:00:00Z`, `…+01:00`) into ms
 * since the epoch; undefined for anything else, including dates that do not
 * exist (February 30), which Date.parse would roll over.
 */
export function parseRfc3339(text: string): number | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const fraction = match[7] ? Number(match[7]) * 1000 : 0;
  const local = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(local);
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  const offsetMinutes = match[8] ? (match[8] === "-" ? -1 : 1) * (Number(match[9]) * 60 + Number(match[10])) : 0;
  if (Math.abs(offsetMinutes) >= 24 * 60) return undefined;
  return local + fraction - offsetMinutes * 60_000;
}

/** The zone's offset from UTC at that instant, in minutes (`+60` for Europe/Berlin in winter). */
export function offsetMinutesAt(ms: number, timeZone: string): number {
  const wall = wallClock(ms, timeZone);
  const asUtc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60_000);
}

/** The zone's clock reading at instant `ms`, written as the UTC instant with the same reading (09:00 CET → 09:00Z). */
export function toWallClock(ms: number, timeZone: string): number {
  return ms + offsetMinutesAt(ms, timeZone) * 60_000;
}

/**
 * The instant at which the zone's clocks read `wall` (as toWallClock writes
 * it). A reading that happens twice (the repeated hour of a fall-back) gives
 * the first; a reading that never happens (the hour a spring-forward skips)
 * is taken with the offset before the change, so 02:30 becomes 03:30 after a
 * one-hour jump, and is flagged `skipped`.
 */
export function fromWallClock(wall: number, timeZone: string): { ms: number; skipped: boolean } {
  // Offsets a day either side of the reading bracket any change near it (zones change at most a few times a year).
  const before = offsetMinutesAt(wall - DAY_MS, timeZone) * 60_000;
  const after = offsetMinutesAt(wall + DAY_MS, timeZone) * 60_000;
  const candidates = [wall - before, wall - after].filter((ms) => toWallClock(ms, timeZone) === wall);
  if (candidates.length === 0) return { ms: wall - before, skipped: true };
  return { ms: Math.min(...candidates), skipped: false };
}

/** `2026-12-01T17:00:00+01:00` (`…Z` in zone UTC); milliseconds are shown only when there are any. */
export function formatRfc3339(ms: number, timeZone = "UTC"): string {
  const wall = wallClock(ms, timeZone);
  const millis = ((ms % 1000) + 1000) % 1000;
  const fraction = millis === 0 ? "" : `.${String(Math.floor(millis)).padStart(3, "0")}`;
  const offset = canonicalTimeZone(timeZone) === "UTC" ? "Z" : formatOffset(offsetMinutesAt(ms, timeZone));
  return `${isoDate(wall)}T${pad(wall.hour)}:${pad(wall.minute)}:${pad(wall.second)}${fraction}${offset}`;
}

/** `Tue 2026-12-01 17:00 +01:00`: a calendar line's instant, minutes only, with the offset so a DST change shows. */
export function formatCalendar(ms: number, timeZone: string): string {
  const wall = wallClock(ms, timeZone);
  return `${wall.weekday} ${isoDate(wall)} ${pad(wall.hour)}:${pad(wall.minute)} ${formatOffset(offsetMinutesAt(ms, timeZone))}`;
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: string;
}

function wallClock(ms: number, timeZone: string): WallClock {
  const parts = Object.fromEntries(wallClockFormatter(timeZone).formatToParts(new Date(ms)).map((part) => [part.type, part.value]));
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    weekday: parts.weekday ?? "",
  };
}

function wallClockFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      weekday: "short",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

function isoDate(wall: WallClock): string {
  return `${String(wall.year).padStart(4, "0")}-${pad(wall.month)}-${pad(wall.day)}`;
}

function pad(value: number): string {
  return String(value).padStart(2, "0");
}

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { UpdateWindow } from "../../../src/api/types.js";
import { InvalidSpecError } from "../../../src/errors.js";
import { formatCalendar, formatRfc3339, parseRfc3339 } from "../../../src/gating/calendar.js";
import { compileWindows, describeWindow, nextOpenings, updateGate, windowIssues, type Opening } from "../../../src/gating/windows.js";

const at = (iso: string): number => {
  const ms = parseRfc3339(iso);
  assert.ok(ms !== undefined, iso);
  return ms;
};
const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString().replace(".000Z", "Z"));
const gate = (windows: UpdateWindow[], now: string) => updateGate(compileWindows(windows), at(now));
/** Openings as `open..close` in UTC, `-` for open-ended, `(now)` for one in progress. */
const openings = (windows: UpdateWindow[], from: string, count: number): string[] =>
  nextOpenings(compileWindows(windows), at(from), count).map(
    (o: Opening) => `${iso(o.opensAt)}..${iso(o.closesAt) ?? "-"}${o.openNow ? " (now)" : ""}`,
  );

const officeFreeze: UpdateWindow = { type: "Deny", schedule: "0 9 * * MON-FRI", duration: "8h", timeZone: "Europe/Berlin" };
const tueThuAfternoons: UpdateWindow = { type: "Allow", schedule: "0 14 * * TUE,THU", duration: "3h", timeZone: "America/New_York" };

describe("updateGate", () => {
  test("no windows: always allowed, one open-ended opening from now", () => {
    assert.deepEqual(updateGate([], at("2026-12-01T10:00:00Z")), { allowed: true });
    assert.deepEqual(openings([], "2026-12-01T10:00:00Z", 3), ["2026-12-01T10:00:00Z..- (now)"]);
  });

  test("a Deny window holds from its start (inclusive) to its end (exclusive); MON-FRI skips the weekend", () => {
    // 2026-12-01 is a Tuesday; Berlin is UTC+1 in December, so 09:00-17:00 is 08:00Z-16:00Z.
    assert.equal(gate([officeFreeze], "2026-12-01T07:59:59.999Z").allowed, true);
    assert.deepEqual(gate([officeFreeze], "2026-12-01T08:00:00Z"), {
      allowed: false,
      heldBy: 'Deny window spec.updateWindows[0] ("0 9 * * MON-FRI" for 8h, Europe/Berlin) until 2026-12-01T17:00:00+01:00',
      nextOpensAt: at("2026-12-01T16:00:00Z"),
      holdEndsAt: at("2026-12-01T16:00:00Z"),
    });
    assert.equal(gate([officeFreeze], "2026-12-01T15:59:59.999Z").allowed, false);
    assert.equal(gate([officeFreeze], "2026-12-01T16:00:00Z").allowed, true);
    assert.equal(gate([officeFreeze], "2026-12-05T09:00:00Z").allowed, true, "Saturday");
    assert.equal(gate([officeFreeze], "2026-12-07T09:00:00Z").allowed, false, "Monday");
    assert.deepEqual(openings([officeFreeze], "2026-12-04T12:00:00Z", 2), ["2026-12-04T16:00:00Z..2026-12-07T08:00:00Z", "2026-12-07T16:00:00Z..2026-12-08T08:00:00Z"]);
  });

  test("with only Allow windows, updates wait for the next Allow start", () => {
    // New York is UTC-5 in December: 14:00-17:00 is 19:00Z-22:00Z.
    assert.deepEqual(gate([tueThuAfternoons], "2026-11-30T12:00:00Z"), {
      allowed: false,
      heldBy: 'Allow window spec.updateWindows[0] ("0 14 * * TUE,THU" for 3h, America/New_York), not open now',
      nextOpensAt: at("2026-12-01T19:00:00Z"),
    });
    assert.equal(gate([tueThuAfternoons], "2026-12-01T19:00:00Z").allowed, true);
    assert.equal(gate([tueThuAfternoons], "2026-12-01T22:00:00Z").nextOpensAt, at("2026-12-03T19:00:00Z"));
    assert.deepEqual(openings([tueThuAfternoons], "2026-11-30T12:00:00Z", 3), [
      "2026-12-01T19:00:00Z..2026-12-01T22:00:00Z",
      "2026-12-03T19:00:00Z..2026-12-03T22:00:00Z",
      "2026-12-08T19:00:00Z..2026-12-08T22:00:00Z",
    ]);
    assert.deepEqual(openings([tueThuAfternoons], "2026-12-01T20:00:00Z", 1), ["2026-12-01T20:00:00Z..2026-12-01T22:00:00Z (now)"]);
  });

  test("an active Deny wins over an active Allow", () => {
    const windows: UpdateWindow[] = [
      { type: "Allow", schedule: "0 8 * * *", duration: "10h" },
      { type: "Deny", from: "2026-12-01T12:00:00Z", to: "2026-12-01T13:00:00Z" },
    ];
    assert.equal(gate(windows, "2026-12-01T11:59:59Z").allowed, true);
    assert.deepEqual(gate(windows, "2026-12-01T12:30:00Z"), {
      allowed: false,
      heldBy: "Deny window spec.updateWindows[1] (2026-12-01T12:00:00Z to 2026-12-01T13:00:00Z) until 2026-12-01T13:00:00Z",
      nextOpensAt: at("2026-12-01T13:00:00Z"),
      holdEndsAt: at("2026-12-01T13:00:00Z"),
    });
    assert.deepEqual(openings(windows, "2026-12-01T00:00:00Z", 3), [
      "2026-12-01T08:00:00Z..2026-12-01T12:00:00Z",
      "2026-12-01T13:00:00Z..2026-12-01T18:00:00Z",
      "2026-12-02T08:00:00Z..2026-12-02T18:00:00Z",
    ]);
  });

  test("an Allow that starts inside a Deny opens when the Deny ends", () => {
    const windows: UpdateWindow[] = [
      { type: "Allow", schedule: "0 14 * * *", duration: "3h" },
      { type: "Deny", schedule: "0 13 * * *", duration: "2h" },
    ];
    assert.deepEqual(gate(windows, "2026-12-01T12:00:00Z"), {
      allowed: false,
      heldBy: 'Allow window spec.updateWindows[0] ("0 14 * * *" for 3h, UTC), not open now',
      nextOpensAt: at("2026-12-01T15:00:00Z"),
    });
    assert.equal(gate(windows, "2026-12-01T14:30:00Z").nextOpensAt, at("2026-12-01T15:00:00Z"));
    assert.deepEqual(openings(windows, "2026-12-01T12:00:00Z", 2), ["2026-12-01T15:00:00Z..2026-12-01T17:00:00Z", "2026-12-02T15:00:00Z..2026-12-02T17:00:00Z"]);
  });

  test("several Allow windows: overlapping ones join into one opening", () => {
    const windows: UpdateWindow[] = [
      { type: "Allow", schedule: "0 8 * * *", duration: "2h" },
      { type: "Allow", schedule: "0 9 * * *", duration: "3h" },
      { type: "Allow", schedule: "0 20 * * *", duration: "1h" },
    ];
    assert.equal(gate(windows, "2026-12-01T11:00:00Z").allowed, true);
    assert.deepEqual(gate(windows, "2026-12-01T12:00:00Z"), { allowed: false, heldBy: "the 3 Allow windows, none open now", nextOpensAt: at("2026-12-01T20:00:00Z") });
    assert.deepEqual(openings(windows, "2026-12-01T00:00:00Z", 3), [
      "2026-12-01T08:00:00Z..2026-12-01T12:00:00Z",
      "2026-12-01T20:00:00Z..2026-12-01T21:00:00Z",
      "2026-12-02T08:00:00Z..2026-12-02T12:00:00Z",
    ]);
  });

  test("absolute windows: [from, to), offsets honoured, nothing recurs", () => {
    const freeze: UpdateWindow = { type: "Deny", from: "2026-12-24T00:00:00Z", to: "2026-12-27T00:00:00Z" };
    assert.equal(gate([freeze], "2026-12-23T23:59:59.999Z").allowed, true);
    assert.equal(gate([freeze], "2026-12-24T00:00:00Z").nextOpensAt, at("2026-12-27T00:00:00Z"));
    assert.equal(gate([freeze], "2026-12-27T00:00:00Z").allowed, true);
    assert.deepEqual(openings([freeze], "2026-12-20T00:00:00Z", 5), ["2026-12-20T00:00:00Z..2026-12-24T00:00:00Z (now)", "2026-12-27T00:00:00Z..-"]);

    const release: UpdateWindow = { type: "Allow", from: "2026-12-24T09:00:00+01:00", to: "2026-12-24T10:00:00+01:00" };
    assert.deepEqual(openings([release], "2026-12-01T00:00:00Z", 5), ["2026-12-24T08:00:00Z..2026-12-24T09:00:00Z"]);
    assert.deepEqual(
      gate([release], "2026-12-24T09:00:00Z"),
      { allowed: false, heldBy: "Allow window spec.updateWindows[0] (2026-12-24T09:00:00+01:00 to 2026-12-24T10:00:00+01:00), not open now" },
      "no Allow ever again: no nextOpensAt",
    );
  });

  test("a window longer than its period: occurrences chain, the one ending latest counts", () => {
    // Starts 09:00, 10:00, 11:00, each 90m: one Deny from 09:00 to 12:30.
    const chained: UpdateWindow = { type: "Deny", schedule: "0 9,10,11 * * *", duration: "90m" };
    const held = gate([chained], "2026-12-01T09:45:00Z");
    assert.equal(held.heldBy, 'Deny window spec.updateWindows[0] ("0 9,10,11 * * *" for 90m, UTC) until 2026-12-01T12:30:00Z');
    assert.equal(held.nextOpensAt, at("2026-12-01T12:30:00Z"));
    assert.equal(gate([chained], "2026-12-01T12:29:59Z").allowed, false);
    assert.equal(gate([chained], "2026-12-01T12:30:00Z").allowed, true);

    // Six starts 08:00-08:50, each 10h: allowed 08:00-18:50; at 17:00 six starts lie within one duration.
    const long: UpdateWindow = { type: "Allow", schedule: "*/10 8 * * *", duration: "10h" };
    assert.equal(gate([long], "2026-12-01T17:00:00Z").allowed, true);
    assert.equal(gate([long], "2026-12-01T18:49:59Z").allowed, true);
    assert.equal(gate([long], "2026-12-01T18:50:00Z").nextOpensAt, at("2026-12-02T08:00:00Z"));
    assert.deepEqual(openings([long], "2026-12-01T00:00:00Z", 2), ["2026-12-01T08:00:00Z..2026-12-01T18:50:00Z", "2026-12-02T08:00:00Z..2026-12-02T18:50:00Z"]);
  });

  test("a window much longer than its period is found without walking every start", () => {
    // 525,600 starts within one duration: walking them takes minutes (the test timeout cannot stop synchronous code).
    const always: UpdateWindow = { type: "Allow", schedule: "* * * * *", duration: "8760h", timeZone: "Europe/Berlin" };
    const freeze: UpdateWindow = { type: "Deny", from: "2026-12-24T00:00:00Z", to: "2026-12-27T00:00:00Z" };
    const started = performance.now();
    assert.equal(gate([always, freeze], "2026-12-01T10:00:30Z").allowed, true);
    assert.deepEqual(openings([always, freeze], "2026-12-20T00:00:00Z", 2), ["2026-12-20T00:00:00Z..2026-12-24T00:00:00Z (now)", "2026-12-27T00:00:00Z..-"]);
    assert.ok(performance.now() - started < 5_000, `took ${Math.round(performance.now() - started)}ms`);
  });

  test("a Deny that never ends within the search bound: held, no nextOpensAt, and heldBy says so", () => {
    const held = gate([{ type: "Deny", schedule: "0 * * * *", duration: "90m" }], "2026-12-01T10:30:00Z");
    assert.equal(held.allowed, false);
    assert.equal(held.nextOpensAt, undefined);
    assert.match(held.heldBy ?? "", /^Deny window spec\.updateWindows\[0\] \("0 \* \* \* \*" for 90m, UTC\) with no end within the search bound \(400 days or 1000 window boundaries\)$/);
  });
});

describe("daylight saving time", () => {
  const daily0230 = (timeZone: string): UpdateWindow => ({ type: "Allow", schedule: "30 2 * * *", duration: "1h", timeZone });
  const startsOn = (window: UpdateWindow, from: string, localDay: string) =>
    nextOpenings(compileWindows([window]), at(from), 4)
      .filter((o) => formatRfc3339(o.opensAt, window.timeZone).startsWith(localDay))
      .map((o) => iso(o.opensAt));

  test("Europe/Berlin: 02:30 opens once at 03:30 CEST on the spring-forward day, once (the first 02:30) on the fall-back day", () => {
    assert.deepEqual(startsOn(daily0230("Europe/Berlin"), "2026-03-28T12:00:00Z", "2026-03-29"), ["2026-03-29T01:30:00Z"]);
    assert.deepEqual(openings([daily0230("Europe/Berlin")], "2026-03-28T12:00:00Z", 2), ["2026-03-29T01:30:00Z..2026-03-29T02:30:00Z", "2026-03-30T00:30:00Z..2026-03-30T01:30:00Z"]);
    assert.deepEqual(startsOn(daily0230("Europe/Berlin"), "2026-10-24T12:00:00Z", "2026-10-25"), ["2026-10-25T00:30:00Z"]);
    assert.deepEqual(openings([daily0230("Europe/Berlin")], "2026-10-24T12:00:00Z", 2), ["2026-10-25T00:30:00Z..2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z..2026-10-26T02:30:00Z"]);
    // Asked from inside the repeated hour (the second 02:10), the day's start is behind us.
    assert.equal(gate([{ ...daily0230("Europe/Berlin"), duration: "1m" }], "2026-10-25T01:10:00Z").nextOpensAt, at("2026-10-26T01:30:00Z"));
  });

  test("America/New_York: 02:30 opens once on both change days; 01:30 once on the fall-back day", () => {
    assert.deepEqual(startsOn(daily0230("America/New_York"), "2026-03-07T12:00:00Z", "2026-03-08"), ["2026-03-08T07:30:00Z"]);
    assert.deepEqual(startsOn(daily0230("America/New_York"), "2026-10-31T12:00:00Z", "2026-11-01"), ["2026-11-01T07:30:00Z"]);
    const daily0130: UpdateWindow = { type: "Allow", schedule: "30 1 * * *", duration: "10m", timeZone: "America/New_York" };
    assert.deepEqual(startsOn(daily0130, "2026-10-31T12:00:00Z", "2026-11-01"), ["2026-11-01T05:30:00Z"]);
  });

  test("a start the spring-forward shifted is still found when asked just after the jump", () => {
    // Berlin jumps 02:00 CET -> 03:00 CEST at 01:00Z; the 02:30 start happens at 01:30Z.
    assert.equal(gate([daily0230("Europe/Berlin")], "2026-03-29T01:05:00Z").nextOpensAt, at("2026-03-29T01:30:00Z"));
  });

  test("a 9:00-17:00 Berlin freeze is 08:00Z-16:00Z in winter and 07:00Z-15:00Z in summer", () => {
    const office: UpdateWindow = { type: "Deny", schedule: "0 9 * * *", duration: "8h", timeZone: "Europe/Berlin" };
    assert.equal(gate([office], "2026-01-15T07:59:59Z").allowed, true);
    assert.equal(gate([office], "2026-01-15T08:00:00Z").nextOpensAt, at("2026-01-15T16:00:00Z"));
    assert.equal(gate([office], "2026-07-15T06:59:59Z").allowed, true);
    const summer = gate([office], "2026-07-15T07:00:00Z");
    assert.equal(summer.nextOpensAt, at("2026-07-15T15:00:00Z"));
    assert.match(summer.heldBy ?? "", / until 2026-07-15T17:00:00\+02:00$/);
  });

  test("the answers do not depend on the process's own time zone", () => {
    const saved = process.env.TZ;
    try {
      // New York's own spring-forward is that night: a zone conversion through local time would skip Berlin's 02:30.
      process.env.TZ = "America/New_York";
      assert.equal(gate([daily0230("Europe/Berlin")], "2026-03-08T01:00:00Z").nextOpensAt, at("2026-03-08T01:30:00Z"));
      process.env.TZ = "Europe/Berlin";
      assert.equal(gate([daily0230("America/New_York")], "2026-03-29T06:00:00Z").nextOpensAt, at("2026-03-29T06:30:00Z"));
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});

describe("windowIssues and compileWindows", () => {
  const issuesOf = (window: Record<string, unknown>) => windowIssues([{ type: "Deny", ...window }], "spec.updateWindows");

  test("valid windows have no issues", () => {
    assert.deepEqual(windowIssues([officeFreeze, tueThuAfternoons, { type: "Deny", from: "2026-12-24T00:00:00Z", to: "2026-12-27T00:00:00+01:00" }, { type: "Allow", schedule: " 0  9 1 jan * ", duration: "1h30m", timeZone: "utc" }], "spec.updateWindows"), []);
  });

  test("each invalid input gives an issue naming its field", () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ schedule: "0 0 9 * * MON-FRI", duration: "8h" }, "schedule", /has 6 fields: write a 5-field cron expression/],
      [{ schedule: "0 9 * * MON-FRI 2027", duration: "8h" }, "schedule", /has 6 fields/],
      [{ schedule: "@daily", duration: "8h" }, "schedule", /has 1 field: .*@-shortcuts are not supported/],
      [{ schedule: "0 9 ? * *", duration: "8h" }, "schedule", /the day-of-month field "\?" is not standard cron/],
      [{ schedule: "0 9 L * *", duration: "8h" }, "schedule", /the day-of-month field "L" is not standard cron/],
      [{ schedule: "0 9 * * MON#2", duration: "8h" }, "schedule", /the day-of-week field "MON#2" is not standard cron/],
      [{ schedule: "0 9 * * MONDAY", duration: "8h" }, "schedule", /the day-of-week field "MONDAY" is not standard cron/],
      [{ schedule: "0 25 * * *", duration: "8h" }, "schedule", /is not a valid cron expression \(Invalid value for hour: 25\)/],
      [{ schedule: "0 0 30 2 *", duration: "8h" }, "schedule", /never matches a date/],
      [{ schedule: "0 9 * * *", duration: "8h", timeZone: "Mars/Olympus" }, "timeZone", /"Mars\/Olympus" is not an IANA time zone/],
      [{ schedule: "0 9 * * *", duration: "0s" }, "duration", /"0s" must be longer than zero/],
      [{ schedule: "0 9 * * *", duration: "8 hours" }, "duration", /is not a duration/],
      [{ from: "2026-12-27T00:00:00Z", to: "2026-12-24T00:00:00Z" }, "to", /ends before it starts/],
      [{ from: "2026-12-24T00:00:00Z", to: "2026-12-24T00:00:00Z" }, "to", /ends before it starts/],
      [{ from: "2026-02-30T00:00:00Z", to: "2026-12-24T00:00:00Z" }, "from", /is not an RFC 3339 time/],
      [{ from: "2026-12-24", to: "2026-12-25T00:00:00Z" }, "from", /is not an RFC 3339 time/],
    ];
    for (const [window, field, message] of cases) {
      const issues = issuesOf(window);
      assert.equal(issues.length, 1, `${JSON.stringify(window)}: ${JSON.stringify(issues)}`);
      assert.equal(issues[0]!.field, `spec.updateWindows[0].${field}`, JSON.stringify(window));
      assert.match(issues[0]!.message, message);
    }
  });

  test("malformed input is left to the schema check, without a crash", () => {
    assert.deepEqual(windowIssues("nope", "spec.updateWindows"), []);
    assert.deepEqual(windowIssues([null, 5, [], { schedule: 7, duration: false, timeZone: {}, from: 1 }], "spec.updateWindows"), []);
  });

  test("compileWindows throws InvalidSpecError naming every bad field", () => {
    const bad = [officeFreeze, { type: "Deny", schedule: "0 0 9 * * *", duration: "0s" }] as UpdateWindow[];
    assert.throws(
      () => compileWindows(bad),
      (err: unknown) =>
        err instanceof InvalidSpecError &&
        /^spec\.updateWindows\[1\]\.schedule: "0 0 9 \* \* \*" has 6 fields.*; spec\.updateWindows\[1\]\.duration: "0s" must be longer than zero/.test(err.message),
    );
    assert.throws(() => compileWindows([{ type: "Deny", schedule: "0 9 * * *" }] as UpdateWindow[], "spec.updateWindows"), /^InvalidSpecError: spec\.updateWindows\[0\]: an update window is either recurring/);
    assert.deepEqual(compileWindows(undefined), []);
  });

  test("describeWindow names type, field, schedule, duration and zone", () => {
    const [recurring, absolute] = compileWindows([tueThuAfternoons, { type: "Deny", from: "2026-12-24T00:00:00Z", to: "2026-12-27T00:00:00Z" }], "spec.updateWindows");
    assert.equal(describeWindow(recurring!), 'Allow window spec.updateWindows[0] ("0 14 * * TUE,THU" for 3h, America/New_York)');
    assert.equal(describeWindow(absolute!), "Deny window spec.updateWindows[1] (2026-12-24T00:00:00Z to 2026-12-27T00:00:00Z)");
  });
});

describe("calendar", () => {
  test("RFC 3339 in and out, with the zone's offset", () => {
    assert.equal(parseRfc3339("2026-12-24T09:00:00+01:00"), Date.UTC(2026, 11, 24, 8));
    assert.equal(parseRfc3339("2026-12-24T09:00:00.250Z"), Date.UTC(2026, 11, 24, 9, 0, 0, 250));
    assert.equal(parseRfc3339("2026-12-24T24:00:00Z"), undefined);
    assert.equal(formatRfc3339(Date.UTC(2026, 11, 1, 16), "Europe/Berlin"), "2026-12-01T17:00:00+01:00");
    assert.equal(formatRfc3339(Date.UTC(2026, 6, 1, 16), "America/New_York"), "2026-07-01T12:00:00-04:00");
    assert.equal(formatRfc3339(Date.UTC(2026, 6, 1, 16)), "2026-07-01T16:00:00Z");
    assert.equal(formatCalendar(Date.UTC(2026, 11, 1, 16), "Europe/Berlin"), "Tue 2026-12-01 17:00 +01:00");
  });
});

// `stagesetctl windows -f FILE`: offline, in process, at a fixed instant (--now) and zone (--time-zone).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "../../../src/cli/program.js";

const MANIFEST = (windows: string, extra = "") => `apiVersion: stages.metio.wtf/v1
kind: StageSet
metadata: { name: platform, namespace: apps }
spec:
  stages: [{ name: app, sourceRef: { name: app } }]
${extra}${windows ? `  updateWindows:\n${windows}` : ""}`;

const OFFICE_FREEZE = `    - { type: Deny, schedule: "0 9 * * MON-FRI", duration: 8h, timeZone: Europe/Berlin }\n`;
const TUE_THU = `    - { type: Allow, schedule: "0 14 * * TUE,THU", duration: 3h, timeZone: America/New_York }\n`;

describe("stagesetctl windows -f", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "windows-cli-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function windows(manifest: string, args: string[], env: Record<string, string> = {}) {
    const file = join(dir, `stageset-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, manifest);
    let stdout = "";
    let stderr = "";
    const code = await runCli(["windows", "-f", file, ...args], {
      out: (text) => void (stdout += text),
      err: (text) => void (stderr += text),
      stdoutIsTTY: false,
      env: { PATH: process.env["PATH"], ...env },
    });
    return { code, stdout, stderr, file };
  }

  test("held: names the holding window, when updates open, and lists openings in your zone and each window's", async () => {
    // Tuesday 2026-12-01 10:00 Berlin: inside the office freeze; the New York Allow opens at 14:00 New York.
    const { code, stdout, stderr } = await windows(MANIFEST(OFFICE_FREEZE + TUE_THU), ["--now", "2026-12-01T10:00:00+01:00", "--time-zone", "Asia/Tokyo", "--next", "2"]);
    assert.equal(code, 0, stderr);
    assert.equal(
      stdout,
      `StageSet:   apps/platform
At (--now): Tue 2026-12-01 18:00 +09:00 (Asia/Tokyo)
Scope:      Updates (a closed window holds new revisions; drift correction continues)
Updates:    held by Deny window spec.updateWindows[0] ("0 9 * * MON-FRI" for 8h, Europe/Berlin) until 2026-12-01T17:00:00+01:00; next allowed Wed 2026-12-02 04:00 +09:00

Windows:
  Deny window spec.updateWindows[0] ("0 9 * * MON-FRI" for 8h, Europe/Berlin)
  Allow window spec.updateWindows[1] ("0 14 * * TUE,THU" for 3h, America/New_York)

Next 2 openings:
  #   ZONE                 OPENS                         CLOSES                        LASTS
  1   Asia/Tokyo (yours)   Wed 2026-12-02 04:00 +09:00   Wed 2026-12-02 07:00 +09:00   3h
      Europe/Berlin        Tue 2026-12-01 20:00 +01:00   Tue 2026-12-01 23:00 +01:00
      America/New_York     Tue 2026-12-01 14:00 -05:00   Tue 2026-12-01 17:00 -05:00
  2   Asia/Tokyo (yours)   Fri 2026-12-04 04:00 +09:00   Fri 2026-12-04 07:00 +09:00   3h
      Europe/Berlin        Thu 2026-12-03 20:00 +01:00   Thu 2026-12-03 23:00 +01:00
      America/New_York     Thu 2026-12-03 14:00 -05:00   Thu 2026-12-03 17:00 -05:00
`,
    );
  });

  test("allowed now: the first opening is in progress; TZ is your zone without --time-zone; windowScope All is shown", async () => {
    const { code, stdout, stderr } = await windows(MANIFEST(OFFICE_FREEZE, "  windowScope: All\n"), ["--now", "2026-12-04T16:30:00Z", "--next", "1"], { TZ: "Europe/Berlin" });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^At \(--now\): Fri 2026-12-04 17:30 \+01:00 \(Europe\/Berlin\)$/m);
    assert.match(stdout, /^Scope: +All \(a closed window is a hard freeze/m);
    assert.match(stdout, /^Updates: +allowed$/m);
    assert.match(stdout, /^ {2}1 {3}Europe\/Berlin \(yours\) {3}now {5}Mon 2026-12-07 09:00 \+01:00 {3}2d15h30m$/m);
  });

  test("no windows: always allowed, no calendar", async () => {
    const { code, stdout } = await windows(MANIFEST(""), ["--now", "2026-12-01T10:00:00Z", "--time-zone", "UTC"]);
    assert.equal(code, 0);
    assert.equal(stdout, "StageSet:   apps/platform\nAt (--now): Tue 2026-12-01 10:00 +00:00 (UTC)\nUpdates:    always allowed: the StageSet has no update windows\n");
  });

  test("no opening ever again: held with no next opening, said in both places", async () => {
    const past = `    - { type: Allow, from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z" }\n`;
    const { code, stdout } = await windows(MANIFEST(past), ["--now", "2026-12-01T10:00:00Z", "--time-zone", "UTC"]);
    assert.equal(code, 0);
    assert.match(stdout, /^Updates: +held by Allow window spec\.updateWindows\[0\] \(2026-01-01T00:00:00Z to 2026-01-02T00:00:00Z\), not open now; no opening within the search bound \(400 days or 1000 window boundaries\)$/m);
    assert.match(stdout, /^No opening within the search bound/m);
  });

  test("invalid windows exit 2 naming every field", async () => {
    const bad = `    - { type: Deny, schedule: "0 0 9 * * MON-FRI", duration: 8h, timeZone: Mars/Olympus }\n    - { type: Allow, schedule: "0 9 * * *", duration: 0s }\n`;
    const { code, stdout, stderr, file } = await windows(MANIFEST(bad), ["--now", "2026-12-01T10:00:00Z"]);
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.ok(stderr.startsWith(`error: ${file} is not a valid StageSet:\n`), stderr);
    assert.match(stderr, /^ {2}spec\.updateWindows\[0\]\.schedule: "0 0 9 \* \* MON-FRI" has 6 fields/m);
    assert.match(stderr, /^ {2}spec\.updateWindows\[0\]\.timeZone: "Mars\/Olympus" is not an IANA time zone/m);
    assert.match(stderr, /^ {2}spec\.updateWindows\[1\]\.duration: "0s" must be longer than zero/m);
  });

  test("bad flags exit 2 with the fix", async () => {
    const cases: [string[], RegExp][] = [
      [["--next", "many"], /--next many: give how many openings to list, a whole number from 1 to 100/],
      [["--next", "0"], /--next 0:/],
      [["--now", "tomorrow"], /--now tomorrow: not an RFC 3339 time/],
      [["--time-zone", "Mars/Olympus"], /--time-zone Mars\/Olympus: not an IANA time zone/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await windows(MANIFEST(OFFICE_FREEZE), args);
      assert.equal(code, 2, args.join(" "));
      assert.match(stderr, message);
    }
  });
});

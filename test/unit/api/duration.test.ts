import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidDurationError, parseDuration } from "../../../src/api/duration.js";
import { StageSetError } from "../../../src/errors.js";

describe("parseDuration", () => {
  const cases: [string, number][] = [
    ["0s", 0],
    ["250ms", 250],
    ["90s", 90_000],
    ["5m", 300_000],
    ["15m", 900_000],
    ["1h30m", 5_400_000],
    ["1.5h", 5_400_000],
    ["1h1h", 7_200_000], // Go sums repeated units
    ["2m30s500ms", 150_500],
    ["0.5s", 500],
    ["1.5ms", 1.5],
    ["60h", 216_000_000],
  ];
  for (const [text, ms] of cases) {
    test(`${text} is ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  for (const text of ["", "5", "5 m", "-5m", "+5m", "1d", "5M", "1.s", ".5s", "5m ", "1us", "h"]) {
    test(`refuses ${JSON.stringify(text)} with a typed error naming the field`, () => {
      assert.throws(
        () => parseDuration(text, "spec.stages[0].timeout"),
        (err: unknown) => {
          assert.ok(err instanceof InvalidDurationError);
          assert.ok(err instanceof StageSetError);
          assert.equal(err.reason, "InvalidSpec");
          assert.equal(err.terminal, true);
          assert.equal(err.field, "spec.stages[0].timeout");
          assert.match(err.message, /^spec\.stages\[0\]\.timeout: ".*" is not a duration: .*e\.g\. 90s, 5m or 1h30m/);
          return true;
        },
      );
    });
  }

  test("refuses a duration beyond Go's int64 nanoseconds", () => {
    assert.equal(parseDuration("2562047h"), 2562047 * 3_600_000);
    assert.throws(() => parseDuration("2562048h", "spec.interval"), /^InvalidDurationError|spec\.interval: "2562048h" is too long/);
  });
});

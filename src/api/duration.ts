/**
 * Durations as the StageSet API writes them: Flux's grammar (a sequence of
 * decimal numbers, each with a unit of ms, s, m or h, e.g. `1h30m`, `1.5s`),
 * summed with Go's `time.ParseDuration` arithmetic. It is the same grammar the
 * CRD's pattern admits, so a duration that passed the API server parses here.
 */
import { InvalidSpecError } from "../errors.js";

const UNIT_NANOSECONDS: Record<string, bigint> = {
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const COMPONENT = /([0-9]+)(?:\.([0-9]+))?(ms|s|m|h)/y;

/** Go's time.Duration is an int64 of nanoseconds. */
const MAX_NANOSECONDS = (1n << 63n) - 1n;

/** A duration field holds text that is not a duration. */
export class InvalidDurationError extends InvalidSpecError {
  readonly field: string;
  /** The message without the field, e.g. `"5 min" is not a duration: …`. */
  readonly problem: string;

  constructor(field: string, value: string, problem: string) {
    super(`${field}: ${JSON.stringify(value)} ${problem}`);
    this.field = field;
    this.problem = `${JSON.stringify(value)} ${problem}`;
  }
}

/**
 * Parses a duration into milliseconds (fractional below a millisecond is kept,
 * e.g. `1.5ms` -> 1.5). `field` names the field in the error, e.g.
 * `spec.stages[0].timeout`.
 */
export function parseDuration(text: string, field = "duration"): number {
  if (text === "") {
    throw new InvalidDurationError(field, text, "is not a duration: write a number with a unit (ms, s, m, h), e.g. 90s, 5m or 1h30m");
  }
  let total = 0n;
  COMPONENT.lastIndex = 0;
  while (COMPONENT.lastIndex < text.length) {
    const match = COMPONENT.exec(text);
    if (match === null) {
      throw new InvalidDurationError(
        field,
        text,
        "is not a duration: write numbers each followed by a unit (ms, s, m, h), e.g. 90s, 5m or 1h30m, with no spaces or signs",
      );
    }
    const [, whole, fraction = "", unitName] = match;
    const unit = UNIT_NANOSECONDS[unitName!]!;
    total += BigInt(whole!) * unit;
    if (fraction !== "") total += (BigInt(fraction) * unit) / 10n ** BigInt(fraction.length);
    if (total > MAX_NANOSECONDS) {
      throw new InvalidDurationError(field, text, "is too long: a duration must be shorter than about 292 years");
    }
  }
  return Number(total) / 1_000_000;
}

import { InvalidSpecError } from "../errors.js";

/** Exit codes shared by every command (docs/cli.md). */
export const ExitCode = {
  ok: 0,
  /** `diff` found changes. */
  changes: 1,
  usage: 2,
  runtime: 3,
} as const;

/**
 * The command line asks for something that cannot work as typed: a missing
 * argument, an unknown stage, a flag value out of range. The message says
 * what to type instead. Exits 2.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * A StageSet manifest given with `-f` that the API server would refuse.
 * It is the user's input, so it exits 2 like a usage error; each issue names
 * the field and the fix.
 */
export class InvalidManifestFileError extends InvalidSpecError {
  readonly file: string;
  readonly issues: readonly { field: string; message: string }[];

  constructor(file: string, issues: readonly { field: string; message: string }[]) {
    const lines = issues.map((issue) => `  ${issue.field || "(document)"}: ${issue.message}`);
    super(`${file} is not a valid StageSet:\n${lines.join("\n")}`);
    this.file = file;
    this.issues = issues;
  }
}

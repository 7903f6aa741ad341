/** Where a command writes, and what it knows about its terminal. Injected so commands run in tests unchanged. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Whether stdout is a terminal (for `--color=auto`). */
  stdoutIsTTY: boolean;
  env: NodeJS.ProcessEnv;
}

export function processIo(): CliIo {
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    stdoutIsTTY: process.stdout.isTTY === true,
    env: process.env,
  };
}

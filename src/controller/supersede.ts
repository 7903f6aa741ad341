import { Reasons, StageSetError } from "../errors.js";

/**
 * A run's wait ended because newer input arrived (CONTRACT "Decisions":
 * superseded input cancels a wait). Reason `Progressing`: the StageSet is
 * not failing, it starts again with the new input.
 */
export class SupersededError extends StageSetError {
  /** Why, e.g. `source default/app published revision v2, superseding v1`. */
  readonly why: string;

  constructor(why: string) {
    super(Reasons.Progressing, `superseded: ${why}; starting again with the new input`);
    this.why = why;
  }
}

interface ActiveRun {
  check(): string | undefined;
  controller: AbortController;
}

/**
 * The runs under way, each with a check that says whether its input has
 * been superseded. Watch events `poke` it; a run whose check answers gets
 * its wait signal aborted with a SupersededError. A run only ever looks at
 * that signal while it waits (verify), so an apply is never cut in half.
 */
export class ActiveRuns {
  readonly #runs = new Map<string, ActiveRun>();

  /**
   * Registers the run of `key` with its `check` (returns why the input is
   * superseded, or undefined); returns the signal its waits observe and
   * `end()` to call when the run is over.
   */
  begin(key: string, check: () => string | undefined): { signal: AbortSignal; end(): void } {
    const run: ActiveRun = { check, controller: new AbortController() };
    this.#runs.set(key, run);
    return {
      signal: run.controller.signal,
      end: () => {
        if (this.#runs.get(key) === run) this.#runs.delete(key);
      },
    };
  }

  /** Re-checks the run of `key`, or every run when `key` is undefined (a source changed). */
  poke(key?: string): void {
    const runs = key === undefined ? [...this.#runs.values()] : [this.#runs.get(key)].filter((r) => r !== undefined);
    for (const run of runs) {
      if (run.controller.signal.aborted) continue;
      const why = run.check();
      if (why !== undefined) run.controller.abort(new SupersededError(why));
    }
  }

  get size(): number {
    return this.#runs.size;
  }
}

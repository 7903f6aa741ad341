/**
 * The verify loop: poll live objects until the stage is ready, fail at once on
 * a terminal status, give up at the timeout.
 *
 * `readyChecks.disableWait` is the caller's decision (HealthPlan.waitDisabled):
 * this loop always waits. verifyStageHealth() below combines both.
 */
import { HealthCheckError, StageFailedError } from "../errors.js";
import { planStageHealth, stageHealth, type HealthPlanInput, type LiveObjects, type ObjectHealth, type StageHealth } from "./evaluate.js";
import { describeRef, type ObjectRef } from "./refs.js";
import { systemClock, type Clock } from "../util/clock.js";
import { pollUntil, type PollOptions } from "../util/poll.js";

export { systemClock, type Clock } from "../util/clock.js";

export interface WaitOptions {
  /** Reads the live objects. Its errors end the wait and propagate unchanged. */
  poll: (signal?: AbortSignal) => Promise<LiveObjects>;
  evaluate: (live: LiveObjects, now: number) => StageHealth;
  /** The stage, for messages. */
  stageName: string;
  timeoutMs: number;
  intervalMs: number;
  signal?: AbortSignal;
  clock?: Clock;
  /** Called after every evaluation, e.g. to publish progress in status. */
  onProgress?: (health: StageHealth) => void;
}

/** How many not-ready objects a timeout message lists before "and N more". */
export const MAX_LISTED_OBJECTS = 5;

/**
 * Resolves with the final (ready) health. Throws StageFailedError as soon as
 * an object is in a terminal state, HealthCheckError when `timeoutMs` passes
 * with objects still not ready, or the signal's reason when aborted.
 */
export async function waitForHealthy(options: WaitOptions): Promise<StageHealth> {
  const clock = options.clock ?? systemClock;
  let last: StageHealth | undefined;
  const pollOptions: PollOptions = {
    timeoutMs: options.timeoutMs,
    intervalMs: options.intervalMs,
    onTimeout: () => new HealthCheckError(timeoutMessage(options.stageName, options.timeoutMs, last?.pending ?? [])),
  };
  if (options.signal) pollOptions.signal = options.signal;
  return pollUntil(clock, pollOptions, async () => {
    const live = await options.poll(options.signal);
    const health = options.evaluate(live, clock.now());
    last = health;
    options.onProgress?.(health);
    if (health.failed) throw new StageFailedError(failureMessage(options.stageName, health.failed));
    return health.ready ? health : undefined;
  });
}

export interface VerifyStageOptions extends HealthPlanInput {
  /** Reads the given objects; missing ones are absent or undefined in the map. */
  fetch: (targets: readonly ObjectRef[], signal?: AbortSignal) => Promise<LiveObjects>;
  timeoutMs: number;
  intervalMs: number;
  signal?: AbortSignal;
  clock?: Clock;
  onProgress?: (health: StageHealth) => void;
}

export type VerifyOutcome = { waited: false } | { waited: true; health: StageHealth };

/**
 * The whole verify step of a stage: plan (compiling CEL, which may throw
 * InvalidSpecError), honour disableWait, then wait.
 */
export async function verifyStageHealth(options: VerifyStageOptions): Promise<VerifyOutcome> {
  const plan = planStageHealth(options);
  if (plan.waitDisabled) return { waited: false };
  const waitOptions: WaitOptions = {
    poll: (signal) => options.fetch(plan.targets, signal),
    evaluate: (live, now) => stageHealth(plan, live, { now }),
    stageName: plan.stageName,
    timeoutMs: options.timeoutMs,
    intervalMs: options.intervalMs,
  };
  if (options.signal) waitOptions.signal = options.signal;
  if (options.clock) waitOptions.clock = options.clock;
  if (options.onProgress) waitOptions.onProgress = options.onProgress;
  const health = await waitForHealthy(waitOptions);
  return { waited: true, health };
}

function failureMessage(stageName: string, failed: ObjectHealth): string {
  return `stage "${stageName}": ${describeRef(failed.object)} failed: ${failed.message}`;
}

function timeoutMessage(stageName: string, timeoutMs: number, pending: readonly ObjectHealth[]): string {
  const listed = pending.slice(0, MAX_LISTED_OBJECTS).map(describePending);
  const more = pending.length > MAX_LISTED_OBJECTS ? `, and ${pending.length - MAX_LISTED_OBJECTS} more` : "";
  const noun = pending.length === 1 ? "object" : "objects";
  return (
    `stage "${stageName}": ${pending.length} ${noun} not ready after ${formatDuration(timeoutMs)}: ` +
    `${listed.join("; ")}${more}. Raise stages[].readyChecks.timeout if the rollout needs longer`
  );
}

function describePending(entry: ObjectHealth): string {
  return entry.message ? `${describeRef(entry.object)} is ${entry.status} (${entry.message})` : `${describeRef(entry.object)} is ${entry.status}`;
}

/** `1h2m3s`, `5m`, `1.5s`, `250ms`: the grammar the spec's duration fields accept. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1000;
  let text = "";
  if (hours) text += `${hours}h`;
  if (minutes) text += `${minutes}m`;
  if (seconds) text += `${Number(seconds.toFixed(3))}s`;
  return text;
}

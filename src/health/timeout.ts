import type { Stage, StageSetSpec } from "../api/types.js";
import { parseDuration } from "../api/duration.js";

/** `spec.timeout` when unset. */
export const DEFAULT_STAGE_TIMEOUT = "15m";

/**
 * A stage's time budget in milliseconds. The most specific setting wins:
 * `stages[].readyChecks.timeout`, then `stages[].timeout`, then `spec.timeout`,
 * then 15m. An unparsable value throws InvalidDurationError (an
 * InvalidSpecError) naming the field it came from.
 */
export function resolveStageTimeout(spec: Pick<StageSetSpec, "timeout" | "stages">, stage: Stage): number {
  const index = spec.stages.indexOf(stage);
  const stagePath = index >= 0 ? `spec.stages[${index}]` : `spec.stages[name=${stage.name}]`;
  if (stage.readyChecks?.timeout !== undefined) {
    return parseDuration(stage.readyChecks.timeout, `${stagePath}.readyChecks.timeout`);
  }
  if (stage.timeout !== undefined) return parseDuration(stage.timeout, `${stagePath}.timeout`);
  if (spec.timeout !== undefined) return parseDuration(spec.timeout, "spec.timeout");
  return parseDuration(DEFAULT_STAGE_TIMEOUT, "spec.timeout");
}

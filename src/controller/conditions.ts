import type { Condition } from "../api/types.js";
import { HEALTHY_REASONS, type Reason } from "../errors.js";

export const ConditionTypes = {
  Ready: "Ready",
  Reconciling: "Reconciling",
  Stalled: "Stalled",
} as const;

/** Caps a condition message the way the API conventions expect (32 KiB), leaving room. */
const MAX_MESSAGE = 4096;

/**
 * Appends ` (runbook: <base>/<reason-lowercase>/)` to messages of actionable
 * reasons. Healthy reasons never get a link.
 */
export function withRunbook(message: string, reason: Reason, runbookBaseUrl: string): string {
  if (runbookBaseUrl === "" || HEALTHY_REASONS.has(reason)) return message;
  return `${message} (runbook: ${runbookBaseUrl}/${reason.toLowerCase()}/)`;
}

export function truncateMessage(message: string): string {
  return message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE - 14)} …(truncated)`;
}

/**
 * Sets a condition in place, keeping lastTransitionTime when the status did
 * not change (so a steady state produces an identical status and no write).
 */
export function setCondition(
  conditions: Condition[],
  next: Omit<Condition, "lastTransitionTime">,
  now: () => Date = () => new Date(),
): Condition[] {
  const existing = conditions.find((c) => c.type === next.type);
  const condition: Condition = {
    ...next,
    message: truncateMessage(next.message),
    lastTransitionTime:
      existing && existing.status === next.status ? existing.lastTransitionTime : now().toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
  const others = conditions.filter((c) => c.type !== next.type);
  return sortConditions([...others, condition]);
}

export function removeCondition(conditions: Condition[], type: string): Condition[] {
  return conditions.filter((c) => c.type !== type);
}

export function findCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

const ORDER: Record<string, number> = { Ready: 0, Reconciling: 1, Stalled: 2 };

function sortConditions(conditions: Condition[]): Condition[] {
  return [...conditions].sort((a, b) => (ORDER[a.type] ?? 9) - (ORDER[b.type] ?? 9) || a.type.localeCompare(b.type));
}

/**
 * The kstatus-compatible trio for one outcome of a run:
 * - success/suspended: Ready=True|False, no Reconciling, no Stalled;
 * - progressing or waiting: Ready=False|Unknown with Reconciling=True;
 * - failure: Ready=False, Stalled=True when retrying cannot help, else Reconciling=True.
 */
export interface Outcome {
  ready: "True" | "False" | "Unknown";
  reason: Reason;
  message: string;
  reconciling?: boolean;
  stalled?: boolean;
}

export function applyOutcome(
  conditions: Condition[],
  outcome: Outcome,
  generation: number | undefined,
  runbookBaseUrl: string,
  now?: () => Date,
): Condition[] {
  const message = withRunbook(outcome.message, outcome.reason, runbookBaseUrl);
  let next = setCondition(
    conditions,
    { type: ConditionTypes.Ready, status: outcome.ready, reason: outcome.reason, message, observedGeneration: generation },
    now,
  );
  next = outcome.reconciling
    ? setCondition(next, { type: ConditionTypes.Reconciling, status: "True", reason: outcome.reason, message, observedGeneration: generation }, now)
    : removeCondition(next, ConditionTypes.Reconciling);
  next = outcome.stalled
    ? setCondition(next, { type: ConditionTypes.Stalled, status: "True", reason: outcome.reason, message, observedGeneration: generation }, now)
    : removeCondition(next, ConditionTypes.Stalled);
  return next;
}

/** The kstatus vocabulary: what a readiness rule concludes about one object. */
export const HealthStatus = {
  InProgress: "InProgress",
  Failed: "Failed",
  Current: "Current",
  Terminating: "Terminating",
  NotFound: "NotFound",
  Unknown: "Unknown",
} as const;

export type HealthStatus = (typeof HealthStatus)[keyof typeof HealthStatus];

export interface StatusResult {
  status: HealthStatus;
  /** Human-readable detail, e.g. `Ready: 1/3`. */
  message: string;
  /** A CamelCase word for the decisive rule, e.g. `LessReady`, `ProgressDeadlineExceeded`. */
  reason?: string;
}

export function current(message: string): StatusResult {
  return { status: HealthStatus.Current, message };
}

export function inProgress(reason: string, message: string): StatusResult {
  return { status: HealthStatus.InProgress, message, reason };
}

export function failed(reason: string, message: string): StatusResult {
  return { status: HealthStatus.Failed, message, reason };
}

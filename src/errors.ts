/**
 * Ready-condition reasons. They are wire-stable: users alert on them and each
 * has a runbook page.
 */
export const Reasons = {
  Succeeded: "Succeeded",
  Suspended: "Suspended",
  Progressing: "Progressing",
  DependencyNotReady: "DependencyNotReady",
  SourceNotReady: "SourceNotReady",
  UpdateDeferred: "UpdateDeferred",
  ArtifactFailed: "ArtifactFailed",
  BuildFailed: "BuildFailed",
  DecryptionFailed: "DecryptionFailed",
  StageFailed: "StageFailed",
  HealthCheckFailed: "HealthCheckFailed",
  RBACDenied: "RBACDenied",
  InvalidSpec: "InvalidSpec",
  InvalidVersion: "InvalidVersion",
  DowngradeRequiresMigration: "DowngradeRequiresMigration",
  MigrationFailed: "MigrationFailed",
  RolledBack: "RolledBack",
  PreviousRevisionUnavailable: "PreviousRevisionUnavailable",
} as const;

export type Reason = (typeof Reasons)[keyof typeof Reasons];

/** Reasons that describe a healthy StageSet; they never get a runbook link. */
export const HEALTHY_REASONS: ReadonlySet<Reason> = new Set([Reasons.Succeeded, Reasons.Suspended]);

/** Reasons that mean "waiting", not "failing": the run is held and retried. */
export const WAITING_REASONS: ReadonlySet<Reason> = new Set([
  Reasons.DependencyNotReady,
  Reasons.SourceNotReady,
  Reasons.UpdateDeferred,
  Reasons.Progressing,
]);

/**
 * How soon a run that stopped at a kind the API server does not serve is
 * retried (StageSetError.requeueAfterMs): the CustomResourceDefinition is
 * usually on its way (installed by another StageSet or a Helm release, or
 * being Established), so the run must not wait out `retryInterval` (10m by
 * default). Issue 7 point 9.
 */
export const KIND_NOT_SERVED_REQUEUE_MS = 15_000;

/**
 * The base of every error the pipeline raises on purpose. `reason` is what the
 * StageSet's Ready condition will show; `message` is written for the user and
 * names the stage, field or file at fault and, where there is one, the fix.
 */
export class StageSetError extends Error {
  readonly reason: Reason;
  /** A terminal error will not heal by retrying with the same inputs. */
  readonly terminal: boolean;
  /**
   * Retry sooner than `retryInterval` (ms): the condition is expected to
   * clear by itself soon (a kind whose CRD is not served yet).
   */
  requeueAfterMs?: number;

  constructor(reason: Reason, message: string, options?: { cause?: unknown; terminal?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.reason = reason;
    this.terminal = options?.terminal ?? false;
  }
}

export class SourceNotReadyError extends StageSetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Reasons.SourceNotReady, message, options);
  }
}

export class ArtifactError extends StageSetError {
  constructor(message: string, options?: { cause?: unknown; terminal?: boolean }) {
    super(Reasons.ArtifactFailed, message, options);
  }
}

export class BuildError extends StageSetError {
  constructor(message: string, options?: { cause?: unknown; terminal?: boolean }) {
    super(Reasons.BuildFailed, message, options);
  }
}

export class DecryptionError extends StageSetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Reasons.DecryptionFailed, message, options);
  }
}

export class StageFailedError extends StageSetError {
  constructor(message: string, options?: { cause?: unknown; terminal?: boolean }) {
    super(Reasons.StageFailed, message, options);
  }
}

export class HealthCheckError extends StageSetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Reasons.HealthCheckFailed, message, options);
  }
}

export class InvalidSpecError extends StageSetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Reasons.InvalidSpec, message, { ...options, terminal: true });
  }
}

/** Renders any thrown value as a one-line message for status and events. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

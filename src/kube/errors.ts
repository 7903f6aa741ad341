import { Reasons, StageSetError } from "../errors.js";

/**
 * The `reason` of a metav1.Status (NotFound, Conflict, Forbidden, Invalid,
 * AlreadyExists, Gone, …). Two client-side values extend the set: `Timeout`
 * when our own per-request deadline fired, `ConnectionFailed` when no HTTP
 * response arrived at all.
 */
export type StatusReason = string;

export interface KubeApiErrorDetails {
  /** HTTP status; 0 when no response arrived (network error, client timeout). */
  status: number;
  reason: StatusReason;
  /** What the server said (or the network error), without any request body. */
  serverMessage: string;
  /** The operation, e.g. `patch apps/v1 deployments payments/web`. */
  operation: string;
  /** metav1.Status `details.causes`, for Invalid. */
  causes?: { field?: string; message?: string; reason?: string }[];
  /** metav1.Status `details.retryAfterSeconds` (429, some 5xx). */
  retryAfterSeconds?: number;
}

/**
 * A request to the Kubernetes API failed. Its default Ready reason is
 * `RBACDenied` for 403 (the identity — often the tenant's ServiceAccount — was
 * refused) and `StageFailed` otherwise; callers that know better (source
 * resolution, say) wrap it in the error class that fits.
 */
export class KubeApiError extends StageSetError {
  readonly status: number;
  readonly statusReason: StatusReason;
  readonly serverMessage: string;
  readonly operation: string;
  readonly causes: { field?: string; message?: string; reason?: string }[];
  readonly retryAfterSeconds: number | undefined;

  constructor(details: KubeApiErrorDetails, options?: { cause?: unknown }) {
    const code = details.status === 0 ? details.reason : `HTTP ${details.status} ${details.reason}`;
    super(
      details.status === 403 ? Reasons.RBACDenied : Reasons.StageFailed,
      `${details.operation}: ${details.serverMessage} (${code})`,
      { ...options, terminal: details.status === 422 },
    );
    this.status = details.status;
    this.statusReason = details.reason;
    this.serverMessage = details.serverMessage;
    this.operation = details.operation;
    this.causes = details.causes ?? [];
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}

/** The API server does not serve `kind` in `apiVersion` (CRD missing or not yet established). */
export class KindNotFoundError extends StageSetError {
  readonly apiVersion: string;
  readonly kind: string;

  constructor(apiVersion: string, kind: string) {
    super(
      Reasons.StageFailed,
      `the API server has no kind ${kind} in ${apiVersion}: install its CustomResourceDefinition ` +
        `(or the API group) first, or correct apiVersion/kind`,
    );
    this.apiVersion = apiVersion;
    this.kind = kind;
  }
}

/** A kubeconfig could not be loaded or was refused (for example an exec plugin in a tenant's Secret). */
export class KubeConfigError extends StageSetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Reasons.StageFailed, message, { ...options, terminal: true });
  }
}

function hasReason(err: unknown, status: number, reason: string): boolean {
  return err instanceof KubeApiError && (err.statusReason === reason || err.status === status);
}

export const isNotFound = (err: unknown): boolean => hasReason(err, 404, "NotFound");
export const isConflict = (err: unknown): boolean => hasReason(err, 409, "Conflict") && !isAlreadyExists(err);
export const isAlreadyExists = (err: unknown): boolean =>
  err instanceof KubeApiError && err.statusReason === "AlreadyExists";
export const isForbidden = (err: unknown): boolean => hasReason(err, 403, "Forbidden");
export const isInvalid = (err: unknown): boolean => hasReason(err, 422, "Invalid");
/** 410: the resourceVersion a watch or continue token referred to was compacted away. */
export const isGone = (err: unknown): boolean =>
  hasReason(err, 410, "Gone") || (err instanceof KubeApiError && err.statusReason === "Expired");
export const isUnauthorized = (err: unknown): boolean => hasReason(err, 401, "Unauthorized");

/** Worth retrying unchanged: throttling, server-side timeouts, 5xx and network failures. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof KubeApiError)) return false;
  return err.status === 0 || err.status === 429 || err.status >= 500 || err.statusReason === "Timeout";
}

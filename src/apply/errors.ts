import { Reasons, StageFailedError, StageSetError } from "../errors.js";
import { isForbidden, KubeApiError } from "../kube/errors.js";

/**
 * The rendered manifests of a stage cannot be applied as they are (a duplicate
 * object, a namespace on a cluster-scoped kind, a missing name). Retrying with
 * the same manifests gives the same answer.
 */
export class InvalidManifestError extends StageFailedError {
  constructor(message: string) {
    super(message, { terminal: true });
  }
}

/** A kind the API server does not serve, with no CustomResourceDefinition for it in the stage. */
export class UnknownKindError extends StageFailedError {
  readonly objectId: string;
  constructor(objectId: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.objectId = objectId;
  }
}

/** An apply hit an immutable field and the stage's conflict policy says Fail (or refused a data-losing Recreate). */
export class ConflictPolicyError extends StageFailedError {
  readonly objectId: string;
  constructor(objectId: string, message: string, options?: { cause?: unknown }) {
    super(message, { ...options, terminal: true });
    this.objectId = objectId;
  }
}

/**
 * A request about one object failed. The Ready reason follows the cause:
 * RBACDenied when the API server refused the identity, StageFailed otherwise.
 */
export class ObjectOperationError extends StageSetError {
  readonly objectId: string;
  constructor(objectId: string, message: string, cause: unknown) {
    super(isForbidden(cause) ? Reasons.RBACDenied : Reasons.StageFailed, message, {
      cause,
      terminal: cause instanceof StageSetError ? cause.terminal : false,
    });
    this.objectId = objectId;
  }
}

/** What the API server said, without the operation prefix KubeApiError adds. */
export function serverMessageOf(err: unknown): string {
  if (err instanceof KubeApiError) return err.serverMessage;
  return err instanceof Error ? err.message : String(err);
}

import { KIND_NOT_SERVED_REQUEUE_MS, Reasons, StageFailedError, StageSetError } from "../errors.js";
import { isForbidden, KindNotFoundError, KubeApiError } from "../kube/errors.js";

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

export { KIND_NOT_SERVED_REQUEUE_MS };

/**
 * The name the CustomResourceDefinition serving `kind` in `group` has by the
 * usual naming, `<plural>.<group>`, with the plural guessed as kubectl does
 * (lower case; `s` → `ses`, consonant + `y` → `ies`, else `+s`): e.g.
 * `prometheusrules.monitoring.coreos.com`. `undefined` for the core group,
 * which has no CRDs. Only a guess: a CRD may choose any plural.
 */
export function expectedCrdName(group: string, kind: string): string | undefined {
  if (group === "" || kind === "") return undefined;
  const lower = kind.toLowerCase();
  let plural: string;
  if (lower.endsWith("s")) plural = `${lower}es`;
  else if (lower.endsWith("y") && !/[aeiou]y$/.test(lower)) plural = `${lower.slice(0, -1)}ies`;
  else plural = `${lower}s`;
  return `${plural}.${group}`;
}

/**
 * A kind the API server does not serve, with no CustomResourceDefinition for
 * it in the stage (engine.ts, when it resolves the stage's kinds). Not
 * terminal, and retried soon ({@link KIND_NOT_SERVED_REQUEUE_MS} in
 * `requeueAfterMs`, never `retryInterval`): issue 7 point 9, "kind not served"
 * is a short requeue naming the missing CRD. When the cause is a
 * KindNotFoundError, `missingCrd` is the CRD name the kind needs by the usual
 * naming and the message names it.
 */
export class UnknownKindError extends StageFailedError {
  readonly objectId: string;
  /** E.g. `prometheusrules.monitoring.coreos.com`; undefined when the kind's group is not known (or core). */
  readonly missingCrd: string | undefined;
  constructor(objectId: string, message: string, options?: { cause?: unknown }) {
    const cause = options?.cause;
    const missingCrd =
      cause instanceof KindNotFoundError ? expectedCrdName(groupOfApiVersion(cause.apiVersion), cause.kind) : undefined;
    super(withCrdName(message, missingCrd, cause), options);
    this.objectId = objectId;
    this.missingCrd = missingCrd;
    this.requeueAfterMs = KIND_NOT_SERVED_REQUEUE_MS;
  }
}

function groupOfApiVersion(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? "" : apiVersion.slice(0, slash);
}

/** Names the CRD in a message that does not yet: after "its CustomResourceDefinition" when it says so, else at the end. */
function withCrdName(message: string, crd: string | undefined, cause: unknown): string {
  if (!crd || message.includes(crd)) return message;
  const version = cause instanceof KindNotFoundError ? cause.apiVersion.slice(cause.apiVersion.indexOf("/") + 1) : "";
  const named = `CustomResourceDefinition (${crd} by the usual naming: missing, not yet Established, or not serving ${version})`;
  const anchor = "its CustomResourceDefinition";
  if (message.includes(anchor)) return message.replace(anchor, `its ${named}`);
  return `${message}; the ${named}`;
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
    // A kind that stopped being served under a request (its CRD deleted or
    // not yet Established) heals as soon as the CRD is: retry soon.
    if (cause instanceof KindNotFoundError) this.requeueAfterMs = KIND_NOT_SERVED_REQUEUE_MS;
    else if (cause instanceof StageSetError && cause.requeueAfterMs !== undefined) this.requeueAfterMs = cause.requeueAfterMs;
  }
}

/** What the API server said, without the operation prefix KubeApiError adds. */
export function serverMessageOf(err: unknown): string {
  if (err instanceof KubeApiError) return err.serverMessage;
  return err instanceof Error ? err.message : String(err);
}

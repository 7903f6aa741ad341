/**
 * The validating admission webhook's decision: an `admission.k8s.io/v1`
 * AdmissionReview in, the same kind out (Kubernetes docs, "Dynamic Admission
 * Control": the response echoes `request.uid` and carries `allowed` and, for a
 * denial, a metav1.Status).
 *
 * There is ONE validation: {@link validateStageSet} of src/api/validate.ts,
 * the same function `stagesetctl build -f` and the reconciler's spec check
 * call. A denial is shaped like the API server's own field errors (HTTP 422,
 * reason `Invalid`, `details.causes[{reason: FieldValueInvalid, field,
 * message}]`, a message `StageSet.stages.metio.wtf "<name>" is invalid: <field>:
 * <message>`), so `kubectl` shows it the way it shows a CRD schema error.
 *
 * What is allowed without a look: other kinds and groups, DELETE and CONNECT,
 * subresources (`status` writes of the controller), an UPDATE of an object
 * being deleted (removing a finalizer must never be refused), and an UPDATE
 * that leaves `spec` as it was (labels, annotations such as
 * `reconcile.fluxcd.io/requestedAt`, finalizers): a StageSet stored before a
 * stricter validation shipped stays writable — "ratcheting", as the API server
 * does for CRD schema rules since Kubernetes 1.30. Such an update gets the
 * problems back as warnings.
 */
import { isDeepStrictEqual } from "node:util";
import { GROUP, STAGESET_KIND } from "../api/types.js";
import { validateStageSet, type ValidationIssue } from "../api/validate.js";

/** The path the webhook serves, in the kubebuilder convention `/validate-<group with dashes>-<version>-<kind>`. */
export const ADMISSION_PATH = "/validate-stages-metio-wtf-v1-stageset";

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

/** The API server shows at most a few warnings well; more are summarized in one. */
const MAX_WARNINGS = 5;

/** The part of an AdmissionRequest this webhook reads (`request` of an AdmissionReview). */
export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  resource?: { group?: string; version?: string; resource?: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation?: string;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

/** metav1.Status as the API server writes it for a refused request. */
export interface AdmissionStatus {
  metadata: Record<string, never>;
  status: "Failure";
  code: number;
  reason: string;
  message: string;
  details?: {
    name?: string;
    group: string;
    kind: string;
    causes: { reason: string; field: string; message: string }[];
  };
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: AdmissionStatus;
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: "AdmissionReview";
  response: AdmissionResponse;
}

/** The request body is not an AdmissionReview this webhook can answer: the HTTP layer sends 400. */
export class MalformedReviewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MalformedReviewError";
  }
}

/** Validates a StageSet manifest; the default is {@link validateStageSet}. Tests inject their own. */
export type StageSetValidator = (obj: unknown) => ValidationIssue[];

/** What {@link reviewAdmission} decided, for the caller's log line (never the object itself). */
export interface AdmissionOutcome {
  review: AdmissionReviewResponse;
  /** Whether validateStageSet ran (false: allowed without a look). */
  validated: boolean;
  request: AdmissionRequest;
}

/**
 * Answers one AdmissionReview (already parsed from JSON). Returns the review
 * to send back with HTTP 200 — a denial is a 200 whose `response.allowed` is
 * false, as the admission protocol wants. Throws {@link MalformedReviewError}
 * when `body` is not an `admission.k8s.io/v1` AdmissionReview with a
 * `request.uid` (the only version this webhook registers with
 * `admissionReviewVersions: [v1]`). An exception from `validate` propagates.
 */
export function reviewAdmission(body: unknown, validate: StageSetValidator = validateStageSet): AdmissionOutcome {
  const request = requestOf(body);
  const allow = (warnings?: string[]): AdmissionOutcome => ({
    review: reviewOf({ uid: request.uid, allowed: true, ...(warnings && warnings.length > 0 ? { warnings } : {}) }),
    validated: false,
    request,
  });

  if (!isStageSet(request) || request.subResource) return allow();
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") return allow();
  if (request.operation === "UPDATE") {
    if (deletionRequested(request.object)) return allow();
    if (specOf(request.object) !== undefined && isDeepStrictEqual(specOf(request.object), specOf(request.oldObject))) {
      const issues = validate(request.object);
      return { ...allow(warningsOf(issues)), validated: true };
    }
  }

  const issues = validate(request.object);
  if (issues.length === 0) return { ...allow(), validated: true };
  return {
    review: reviewOf({ uid: request.uid, allowed: false, status: invalidStatus(nameOf(request), issues) }),
    validated: true,
    request,
  };
}

/**
 * The metav1.Status the API server itself returns for field errors of a
 * StageSet (`apierrors.NewInvalid`): 422, reason Invalid, one cause per issue,
 * and a message naming every field.
 */
export function invalidStatus(name: string | undefined, issues: ValidationIssue[]): AdmissionStatus {
  const qualifiedKind = `${STAGESET_KIND}.${GROUP}`;
  const subject = name ? `${qualifiedKind} ${JSON.stringify(name)}` : qualifiedKind;
  const listed = issues.map(formatIssue);
  const message = `${subject} is invalid: ${listed.length === 1 ? listed[0] : `[${listed.join(", ")}]`}`;
  return {
    metadata: {},
    status: "Failure",
    code: 422,
    reason: "Invalid",
    message,
    details: {
      ...(name ? { name } : {}),
      group: GROUP,
      kind: STAGESET_KIND,
      causes: issues.map((issue) => ({ reason: "FieldValueInvalid", field: issue.field, message: issue.message })),
    },
  };
}

/** A review answering an AdmissionRequest the webhook could not evaluate (its validation threw): HTTP 500 in the status. */
export function internalErrorReview(uid: string, message: string): AdmissionReviewResponse {
  return reviewOf({
    uid,
    allowed: false,
    status: { metadata: {}, status: "Failure", code: 500, reason: "InternalError", message },
  });
}

/** The uid of a review that may be malformed, when it has one. */
export function uidOf(body: unknown): string | undefined {
  const request = isRecord(body) && isRecord(body.request) ? body.request : undefined;
  return typeof request?.uid === "string" && request.uid !== "" ? request.uid : undefined;
}

function reviewOf(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", response };
}

function requestOf(body: unknown): AdmissionRequest {
  if (!isRecord(body)) throw new MalformedReviewError("the body must be a JSON object: an AdmissionReview");
  if (body.kind !== "AdmissionReview" || body.apiVersion !== ADMISSION_API_VERSION) {
    throw new MalformedReviewError(
      `expected kind AdmissionReview of ${ADMISSION_API_VERSION}, got ${JSON.stringify(body.kind)} of ${JSON.stringify(body.apiVersion)} ` +
        `(register the webhook with admissionReviewVersions: [v1])`,
    );
  }
  const request = body.request;
  if (!isRecord(request)) throw new MalformedReviewError("the AdmissionReview has no request");
  if (typeof request.uid !== "string" || request.uid === "") throw new MalformedReviewError("the AdmissionReview request has no uid");
  return request as unknown as AdmissionRequest;
}

function isStageSet(request: AdmissionRequest): boolean {
  if (request.kind) return request.kind.group === GROUP && request.kind.kind === STAGESET_KIND;
  return request.resource?.group === GROUP && request.resource.resource === "stagesets";
}

function deletionRequested(obj: unknown): boolean {
  return isRecord(obj) && isRecord(obj.metadata) && typeof obj.metadata.deletionTimestamp === "string";
}

function specOf(obj: unknown): unknown {
  return isRecord(obj) ? obj.spec : undefined;
}

function nameOf(request: AdmissionRequest): string | undefined {
  const obj = request.object;
  if (isRecord(obj) && isRecord(obj.metadata) && typeof obj.metadata.name === "string" && obj.metadata.name !== "") return obj.metadata.name;
  return request.name || undefined;
}

function formatIssue(issue: ValidationIssue): string {
  return issue.field ? `${issue.field}: ${issue.message}` : issue.message;
}

function warningsOf(issues: ValidationIssue[]): string[] {
  if (issues.length === 0) return [];
  const shown = issues.slice(0, MAX_WARNINGS).map((issue) => `spec unchanged but invalid: ${formatIssue(issue)}`);
  if (issues.length > MAX_WARNINGS) shown.push(`and ${issues.length - MAX_WARNINGS} more problems; fix them with the next spec change`);
  return shown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

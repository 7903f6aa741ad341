/**
 * The StageSet and StageInventory API (stages.metio.wtf/v1) as TypeScript
 * types. The OpenAPI schema in schema.ts describes the same shapes for the
 * CRDs; keep the two in step (a unit test compares them).
 */

export const GROUP = "stages.metio.wtf";
export const VERSION = "v1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const STAGESET_KIND = "StageSet";
export const STAGEINVENTORY_KIND = "StageInventory";

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  managedFields?: unknown[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Any Kubernetes object, as read from the API or rendered from manifests. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface SourceRef {
  apiVersion?: string;
  /** Default `ExternalArtifact`. */
  kind?: string;
  name: string;
  namespace?: string;
}

export interface NamespacedName {
  name: string;
  namespace?: string;
}

export interface SecretKeyRef {
  name: string;
  key?: string;
}

export interface Patch {
  patch: string;
  target?: PatchTarget;
}

export interface PatchTarget {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  labelSelector?: string;
  annotationSelector?: string;
}

export interface SubstituteReference {
  kind: "ConfigMap" | "Secret";
  name: string;
  optional?: boolean;
}

export interface PostBuild {
  substitute?: Record<string, string>;
  substituteFrom?: SubstituteReference[];
}

export type ConflictAction = "Fail" | "Recreate" | "KeepExisting";

export interface ConflictTarget {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

export interface ConflictRule {
  target: ConflictTarget;
  action: ConflictAction;
  allowDataLoss?: boolean;
}

export interface ConflictPolicy {
  default?: ConflictAction;
  rules?: ConflictRule[];
}

export interface ObjectCheck {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface HealthExpr {
  apiVersion: string;
  kind: string;
  current: string;
  inProgress?: string;
  failed?: string;
}

export interface ReadyChecks {
  timeout?: string;
  disableWait?: boolean;
  checks?: ObjectCheck[];
  exprs?: HealthExpr[];
}

export interface ActionTarget {
  apiVersion: string;
  kind: string;
  name?: string;
  selector?: string;
  namespace?: string;
}

export interface JobAction {
  sourceRef: SourceRef;
  path?: string;
}

export interface HttpAction {
  url: string;
  method?: string;
  expectedStatus?: number[];
  headers?: Record<string, string>;
  headersFrom?: SecretKeyRef[];
  bodyFrom?: SecretKeyRef;
}

export interface WaitAction {
  duration?: string;
  target?: ActionTarget;
  expr?: string;
}

export interface PatchAction {
  target: ActionTarget;
  type?: "merge" | "json6902";
  patch: string;
}

export interface DeleteAction {
  target: ActionTarget;
}

export interface ApplyAction {
  sourceRef: SourceRef;
  path?: string;
  wait?: boolean;
}

export interface Action {
  name: string;
  timeout?: string;
  retries?: number;
  job?: JobAction;
  http?: HttpAction;
  wait?: WaitAction;
  patch?: PatchAction;
  delete?: DeleteAction;
  apply?: ApplyAction;
}

export const ACTION_OPERATIONS = ["job", "http", "wait", "patch", "delete", "apply"] as const;
export type ActionOperation = (typeof ACTION_OPERATIONS)[number];

export interface StageActions {
  pre?: Action[];
  post?: Action[];
  onFailure?: Action[];
}

export interface Stage {
  name: string;
  sourceRef: SourceRef;
  path?: string;
  prune?: boolean;
  timeout?: string;
  force?: boolean;
  patches?: Patch[];
  postBuild?: PostBuild;
  conflictPolicy?: ConflictPolicy;
  readyChecks?: ReadyChecks;
  actions?: StageActions;
}

export interface VersionFromObject {
  stage: string;
  apiVersion?: string;
  kind: string;
  name: string;
  fieldPath?: string;
}

export interface VersionFromArtifact {
  stage: string;
  path: string;
}

export interface VersionSpec {
  value?: string;
  fromObject?: VersionFromObject;
  fromArtifact?: VersionFromArtifact;
}

export interface Migration {
  name: string;
  from?: string;
  to: string;
  stage: string;
  actions: Action[];
}

export interface UpdateWindow {
  type: "Allow" | "Deny";
  schedule?: string;
  duration?: string;
  timeZone?: string;
  from?: string;
  to?: string;
}

export interface StageSetSpec {
  interval?: string;
  retryInterval?: string;
  driftDetectionInterval?: string;
  timeout?: string;
  suspend?: boolean;
  dependsOn?: NamespacedName[];
  serviceAccountName?: string;
  kubeConfig?: { secretRef: SecretKeyRef };
  decryption?: { provider: "sops"; secretRef?: { name: string } };
  version?: VersionSpec;
  migrations?: Migration[];
  rollbackOnFailure?: boolean;
  updateWindows?: UpdateWindow[];
  windowScope?: "Updates" | "All";
  stages: Stage[];
}

export type StagePhase = "Pending" | "Applying" | "Pruning" | "Verifying" | "Ready" | "Failed";

export interface StageStatus {
  name: string;
  phase: StagePhase;
  appliedRevision?: string;
  entriesCount?: number;
  shards?: number;
  message?: string;
  executedActions?: string[];
  ledgerRevision?: string;
}

export interface SnapshotEntry {
  stage: string;
  url: string;
  digest: string;
  revision: string;
}

export interface PendingUpdate {
  revisions?: Record<string, string>;
  nextWindowOpens?: string;
}

export interface StageSetStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  lastHandledReconcileAt?: string;
  /** The last `stages.metio.wtf/reconcile-stage` value handled (`<stage>` or `<stage>@<token>`; that stage's ledger was cleared once). */
  lastHandledReconcileStage?: string;
  lastAttemptedRevisions?: Record<string, string>;
  lastAppliedRevisions?: Record<string, string>;
  version?: string;
  pendingMigrations?: string[];
  executedMigrations?: string[];
  stages?: StageStatus[];
  lastAppliedSnapshot?: SnapshotEntry[];
  /** Failed revisions that were rolled back, by `<namespace>/<source>`: held until something changes. */
  parkedRevisions?: Record<string, string>;
  lastRollback?: { at?: string; message?: string };
  pendingUpdate?: PendingUpdate;
  lastHandledUpdateOverride?: string;
}

export interface StageSet extends KubeObject {
  apiVersion: typeof API_VERSION;
  kind: typeof STAGESET_KIND;
  spec: StageSetSpec;
  status?: StageSetStatus;
}

export interface InventoryEntry {
  /** `namespace_name_group_kind`, empty group for the core API. */
  id: string;
  /** The applied apiVersion. */
  v: string;
}

export interface StageInventorySpec {
  stagePosition: number;
  entries: InventoryEntry[];
}

export interface StageInventory extends KubeObject {
  apiVersion: typeof API_VERSION;
  kind: typeof STAGEINVENTORY_KIND;
  spec: StageInventorySpec;
}

/** Labels and annotations of the contract. */
export const Labels = {
  ownerName: `${GROUP}/name`,
  ownerNamespace: `${GROUP}/namespace`,
  stage: `${GROUP}/stage`,
  prune: `${GROUP}/prune`,
  inventoryStageSet: `${GROUP}/stage-set`,
  inventoryStage: `${GROUP}/stage`,
  inventoryShard: `${GROUP}/shard`,
} as const;

export const Annotations = {
  requestedAt: "reconcile.fluxcd.io/requestedAt",
  updateNow: `${GROUP}/update-now`,
  reconcileStage: `${GROUP}/reconcile-stage`,
  /** Run once while suspended; honoured when its token equals reconcile.fluxcd.io/requestedAt and is new. */
  forceReconcile: `${GROUP}/force-reconcile`,
  substitute: "kustomize.toolkit.fluxcd.io/substitute",
} as const;

export const FINALIZER = `${GROUP}/finalizer`;
export const FIELD_MANAGER = "stageset-controller";

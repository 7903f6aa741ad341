/**
 * The OpenAPI v3 structural schemas of StageSet and StageInventory
 * (stages.metio.wtf/v1). They describe the shapes of types.ts; the CRDs in
 * config/crd/ are generated from here (`npm run generate`).
 *
 * Every list and every string a CEL rule reads is bounded (maxItems,
 * maxLength): the API server estimates each rule's worst-case cost from those
 * bounds and refuses a CRD whose estimate exceeds its budget. The unique-name
 * rule of an action list is the costliest (quadratic in actionsPerList, times
 * stages): with these limits it sits at about a third of the per-rule budget
 * of kube-apiserver 1.36 (measured: 64 actions per list or 400 stages exceed it).
 */
import { Rules } from "./rules.js";
import { array, boolean, integer, map, object, required, string, type SchemaNode } from "./schema-builders.js";

export const DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$";
export const DNS1123_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

export const Limits = {
  stages: 64,
  actionsPerList: 16,
  migrations: 64,
  updateWindows: 32,
  dependsOn: 64,
  patches: 128,
  conflictRules: 64,
  readyChecks: 256,
  healthExprs: 64,
  substituteFrom: 32,
  headersFrom: 32,
  expectedStatus: 32,
  /** Object and Secret names (DNS-1123 subdomain). */
  nameLength: 253,
  /** Stage names become part of StageInventory names, so they are DNS-1123 labels. */
  stageNameLength: 63,
  namespaceLength: 63,
  actionNameLength: 63,
  durationLength: 64,
  /** Inline patches, CEL expressions and the like. */
  textLength: 65536,
} as const;

export const Defaults = {
  sourceKind: "ExternalArtifact",
  stagePath: "./",
  prune: true,
  timeout: "15m",
  windowScope: "Updates",
  timeZone: "UTC",
  conflictAction: "Fail",
  actionTimeout: "5m",
  actionRetries: 0,
  httpMethod: "POST",
  patchType: "merge",
  applyWait: false,
  kubeConfigKey: "value",
  suspend: false,
  rollbackOnFailure: false,
  substituteOptional: false,
} as const;

// ---------------------------------------------------------------- leaf fields

const duration = (description: string, defaultValue?: string): SchemaNode =>
  string(description, {
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
    pattern: DURATION_PATTERN,
    maxLength: Limits.durationLength,
  });

const objectName = (description: string): SchemaNode =>
  string(description, { minLength: 1, maxLength: Limits.nameLength });

const namespaceName = (description: string): SchemaNode =>
  string(description, { minLength: 1, maxLength: Limits.namespaceLength });

const text = (description: string, minLength = 0): SchemaNode =>
  string(description, { ...(minLength > 0 ? { minLength } : {}), maxLength: Limits.textLength });

const dateTime = (description: string): SchemaNode => string(description, { format: "date-time" });

const revisionMap = (description: string): SchemaNode =>
  map(description, string("A source revision, as the source reports it."));

// ---------------------------------------------------------------- references

function sourceRef(description: string): SchemaNode {
  return object(description, {
    apiVersion: string(
      "API version of the source. Optional for the Flux kinds and ExternalArtifact; set it for a producer kind.",
      { maxLength: Limits.nameLength },
    ),
    kind: string(
      "Kind of the source. GitRepository, OCIRepository and Bucket are read directly; any other kind is a producer whose ExternalArtifact points back at it.",
      { default: Defaults.sourceKind, minLength: 1, maxLength: 63 },
    ),
    name: required(objectName("Name of the source.")),
    namespace: namespaceName("Namespace of the source; the StageSet's namespace when omitted."),
  });
}

function secretKeyRef(description: string, keyDescription: string, keyDefault?: string): SchemaNode {
  const key = string(keyDescription, {
    ...(keyDefault === undefined ? {} : { default: keyDefault }),
    minLength: 1,
    maxLength: Limits.nameLength,
  });
  return object(description, {
    name: required(objectName("Name of the Secret in the StageSet's namespace.")),
    key: keyDefault === undefined ? required(key) : key,
  });
}

function actionTarget(description: string): SchemaNode {
  return object(description, {
    apiVersion: required(string("API version of the target, e.g. apps/v1.", { minLength: 1, maxLength: Limits.nameLength })),
    kind: required(string("Kind of the target.", { minLength: 1, maxLength: 63 })),
    name: objectName("Name of the target object."),
    selector: string("Label selector choosing the target objects, e.g. app=web.", { minLength: 1, maxLength: 4096 }),
    namespace: namespaceName("Namespace of the target; the StageSet's namespace when omitted."),
  });
}

// ---------------------------------------------------------------- actions

const jobAction = object("Run the Jobs rendered from an artifact and wait until every one completes.", {
  sourceRef: required(sourceRef("The artifact that holds the Job manifests.")),
  path: string("Directory inside the artifact to build.", { default: Defaults.stagePath, maxLength: 4096 }),
});

const httpAction = object("Call an HTTP endpoint; the host must be allowed by --allowed-action-hosts.", {
  url: required(string("URL to call (http or https).", { pattern: "^https?://", maxLength: 2048 })),
  method: string("HTTP method.", {
    default: Defaults.httpMethod,
    enum: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
  }),
  expectedStatus: array(
    "Status codes that count as success; any 2xx when empty.",
    integer("An HTTP status code.", { minimum: 100, maximum: 599 }),
    { maxItems: Limits.expectedStatus, "x-kubernetes-list-type": "set" },
  ),
  headers: map("Request headers.", string("Header value.")),
  headersFrom: array(
    "Request headers read from Secrets: the key is the header name, its value the header value.",
    secretKeyRef("A Secret key that becomes a header.", "The Secret key, used as the header name."),
    { maxItems: Limits.headersFrom },
  ),
  bodyFrom: secretKeyRef("A Secret key whose value is sent as the request body.", "The Secret key holding the body."),
});

const waitAction = object(
  "Wait for a fixed duration, or until a CEL expression over one object is true.",
  {
    duration: duration("How long to wait."),
    target: actionTarget("The object the expression reads."),
    expr: text("CEL expression over the target object; the wait ends when it is true.", 1),
  },
  { validations: [Rules.waitShape, Rules.waitTargetNamesOneObject] },
);

const patchAction = object(
  "Patch existing objects.",
  {
    target: required(actionTarget("The objects to patch: by name, or by label selector.")),
    type: string("Patch type: merge (a merge patch) or json6902 (a JSON Patch).", {
      default: Defaults.patchType,
      enum: ["merge", "json6902"],
    }),
    patch: required(text("The patch document.", 1)),
  },
  { validations: [Rules.targetNameXorSelector] },
);

const deleteAction = object(
  "Delete objects; an object that is already gone counts as success.",
  { target: required(actionTarget("The objects to delete: by name, or by label selector.")) },
  { validations: [Rules.targetNameXorSelector] },
);

const applyAction = object("Apply transient manifests that are never inventoried and never pruned.", {
  sourceRef: required(sourceRef("The artifact that holds the manifests.")),
  path: string("Directory inside the artifact to build.", { default: Defaults.stagePath, maxLength: 4096 }),
  wait: boolean("Wait until the applied objects are Ready (bounded by the action timeout).", {
    default: Defaults.applyWait,
  }),
});

const action = object(
  "One step of a stage or migration. It performs exactly one operation.",
  {
    name: required(
      string("Name of the action, unique within its list; the action ledger records it.", {
        minLength: 1,
        maxLength: Limits.actionNameLength,
      }),
    ),
    timeout: duration("Time budget of the action.", Defaults.actionTimeout),
    retries: integer("How often a failed action is retried.", {
      default: Defaults.actionRetries,
      minimum: 0,
      maximum: 100,
    }),
    job: jobAction,
    http: httpAction,
    wait: waitAction,
    patch: patchAction,
    delete: deleteAction,
    apply: applyAction,
  },
  { validations: [Rules.exactlyOneOperation] },
);

const actionList = (description: string): SchemaNode =>
  array(description, action, { maxItems: Limits.actionsPerList, validations: [Rules.uniqueActionNames] });

// ---------------------------------------------------------------- stages

const patch = object("A kustomize patch applied after the build.", {
  patch: required(text("A strategic merge patch or a JSON6902 patch, as YAML or JSON.", 1)),
  target: object("The objects the patch applies to; every field narrows the match.", {
    group: string("API group."),
    version: string("API version."),
    kind: string("Kind."),
    name: string("Name (a regular expression, as in kustomize)."),
    namespace: string("Namespace (a regular expression, as in kustomize)."),
    labelSelector: string("Label selector."),
    annotationSelector: string("Annotation selector."),
  }),
});

const postBuild = object("Variable substitution in the built manifests, with Flux semantics.", {
  substitute: map("Variables and their values, used for ${var} references.", string("The variable's value.")),
  substituteFrom: array(
    "ConfigMaps and Secrets whose data are variables, read in order; later ones win.",
    object("A ConfigMap or Secret in the StageSet's namespace.", {
      kind: required(string("ConfigMap or Secret.", { enum: ["ConfigMap", "Secret"] })),
      name: required(objectName("Name of the ConfigMap or Secret.")),
      optional: boolean("Tolerate a missing ConfigMap or Secret.", { default: Defaults.substituteOptional }),
    }),
    { maxItems: Limits.substituteFrom },
  ),
});

const conflictAction = (description: string, defaultValue?: string): SchemaNode =>
  string(description, {
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
    enum: ["Fail", "Recreate", "KeepExisting"],
  });

const conflictPolicy = object("What to do when an apply hits an immutable field.", {
  default: conflictAction(
    "Action for objects no rule matches. force: true on the stage makes it Recreate.",
    Defaults.conflictAction,
  ),
  rules: array(
    "Per-object rules, evaluated in order; the first match wins.",
    object(
      "A rule for the objects its target matches.",
      {
        target: required(
          object("A partial match: every field set must match, an omitted field matches anything.", {
            apiVersion: string("API version.", { maxLength: Limits.nameLength }),
            kind: string("Kind.", { maxLength: 63 }),
            name: string("Name.", { maxLength: Limits.nameLength }),
            namespace: string("Namespace.", { maxLength: Limits.namespaceLength }),
          }),
        ),
        action: required(conflictAction("The action for matching objects.")),
        allowDataLoss: boolean("Accept that recreating a PersistentVolumeClaim or PersistentVolume destroys its data."),
      },
      { validations: [Rules.dataLossAcknowledged] },
    ),
    { maxItems: Limits.conflictRules },
  ),
});

const readyChecks = object("When the stage counts as healthy. Default: every applied object is Current by kstatus.", {
  timeout: duration("How long to wait for health; overrides the stage and StageSet timeouts."),
  disableWait: boolean("Do not wait for health at all."),
  checks: array(
    "Wait only for these objects.",
    object("An object that must become Current.", {
      apiVersion: required(string("API version.", { minLength: 1 })),
      kind: required(string("Kind.", { minLength: 1 })),
      name: required(objectName("Name.")),
      namespace: namespaceName("Namespace; the stage's objects' namespace when omitted."),
    }),
    { maxItems: Limits.readyChecks },
  ),
  exprs: array(
    "Health of a kind as CEL expressions over the object, like kustomize-controller's healthCheckExprs.",
    object("CEL health expressions for one kind.", {
      apiVersion: required(string("API version of the kind.", { minLength: 1 })),
      kind: required(string("The kind.", { minLength: 1 })),
      current: required(text("True when the object is healthy.", 1)),
      inProgress: text("True while the object is still progressing."),
      failed: text("True when the object has failed."),
    }),
    { maxItems: Limits.healthExprs },
  ),
});

const stage = object("One stage: build an artifact, apply it, wait until it is healthy.", {
  name: required(
    string("Name of the stage: a DNS-1123 label, unique in the StageSet.", {
      minLength: 1,
      maxLength: Limits.stageNameLength,
      pattern: DNS1123_LABEL_PATTERN,
    }),
  ),
  sourceRef: required(sourceRef("The artifact the stage builds.")),
  path: string("Directory inside the artifact to build.", { default: Defaults.stagePath, maxLength: 4096 }),
  prune: boolean("Delete objects that left the stage since the last run.", { default: Defaults.prune }),
  timeout: duration("Time budget of the stage; overrides spec.timeout."),
  force: boolean("Recreate objects whose immutable fields changed (conflictPolicy.default: Recreate)."),
  patches: array("Patches applied after the build.", patch, { maxItems: Limits.patches }),
  postBuild,
  conflictPolicy,
  readyChecks,
  actions: object("Actions around the stage's apply.", {
    pre: actionList("Run before the stage's manifests are applied; a failure aborts the stage."),
    post: actionList("Run after the stage is Ready; the stage is Ready only when all succeed."),
    onFailure: actionList("Run best-effort after any failure from apply onward."),
  }),
});

// ---------------------------------------------------------------- versions and windows

const version = object(
  "Where the deployed version comes from; enables versioned migrations. Exactly one source.",
  {
    value: string("The version itself (semver, a leading v is accepted).", { minLength: 1, maxLength: 256 }),
    fromObject: object("Read the version from an object in a stage's rendered manifests.", {
      stage: required(string("The stage whose manifests hold the object.", { minLength: 1, maxLength: Limits.stageNameLength })),
      apiVersion: string("API version of the object; narrows an ambiguous kind and name."),
      kind: required(string("Kind of the object.", { minLength: 1 })),
      name: required(objectName("Name of the object.")),
      fieldPath: string(
        "kubectl-style JSONPath to the version; the app.kubernetes.io/version label when omitted.",
        { maxLength: 1024 },
      ),
    }),
    fromArtifact: object("Read the version from a file in a stage's artifact.", {
      stage: required(string("The stage whose artifact holds the file.", { minLength: 1, maxLength: Limits.stageNameLength })),
      path: required(string("Path of the file inside the artifact.", { minLength: 1, maxLength: 4096 })),
    }),
  },
  { validations: [Rules.exactlyOneVersionSource] },
);

const migration = object("Actions that run once when the deployed version crosses a boundary.", {
  name: required(string("Name of the migration, unique in the StageSet.", { minLength: 1, maxLength: Limits.actionNameLength })),
  from: string("Semver range or glob the previous version must match (e.g. 1.*); any version when omitted.", {
    minLength: 1,
    maxLength: 256,
  }),
  to: required(string("The exact version whose crossing runs the migration.", { minLength: 1, maxLength: 256 })),
  stage: required(string("The stage before whose pre actions the migration runs.", { minLength: 1, maxLength: Limits.stageNameLength })),
  actions: required(
    array("The migration's actions, in order.", action, {
      minItems: 1,
      maxItems: Limits.actionsPerList,
      validations: [Rules.uniqueActionNames],
    }),
  ),
});

const updateWindow = object(
  "A time window that allows or denies rollouts of new revisions: recurring (schedule, duration) or absolute (from, to).",
  {
    type: required(string("Allow or Deny. With any Allow window, rollouts happen only inside one; Deny wins.", { enum: ["Allow", "Deny"] })),
    schedule: string("Five-field cron expression for the start of a recurring window.", { minLength: 1, maxLength: 256 }),
    duration: duration("How long a recurring window lasts."),
    timeZone: string("IANA time zone of the schedule.", { default: Defaults.timeZone, minLength: 1, maxLength: 64 }),
    from: dateTime("Start of an absolute window (RFC 3339)."),
    to: dateTime("End of an absolute window (RFC 3339)."),
  },
  { validations: [Rules.windowShape, Rules.windowOrder] },
);

// ---------------------------------------------------------------- StageSet spec

export const stageSetSpecSchema: SchemaNode = object("The desired state of a StageSet.", {
  interval: duration("Reconcile cadence; the controller's --default-interval when omitted."),
  retryInterval: duration("Cadence after a failed run; interval when omitted."),
  driftDetectionInterval: duration("A shorter cadence that only re-asserts the applied state."),
  timeout: duration("Time budget of each stage.", Defaults.timeout),
  suspend: boolean("Stop reconciling: nothing is applied or pruned.", { default: Defaults.suspend }),
  dependsOn: array(
    "StageSets that must be Ready at their current generation first.",
    object("A StageSet reference.", {
      name: required(objectName("Name of the StageSet.")),
      namespace: namespaceName("Namespace of the StageSet; this one's namespace when omitted."),
    }),
    { maxItems: Limits.dependsOn },
  ),
  serviceAccountName: string("Every cluster operation of this StageSet runs as this ServiceAccount.", {
    minLength: 1,
    maxLength: Limits.nameLength,
  }),
  kubeConfig: object("Apply to a remote cluster.", {
    secretRef: required(
      secretKeyRef("The Secret holding a self-contained kubeconfig.", "The Secret key holding the kubeconfig.", Defaults.kubeConfigKey),
    ),
  }),
  decryption: object("Decrypt SOPS-encrypted files in the stage sources.", {
    provider: required(string("The decryption provider.", { enum: ["sops"] })),
    secretRef: object("The Secret holding the decryption keys.", {
      name: required(objectName("Name of the Secret in the StageSet's namespace.")),
    }),
  }),
  version,
  migrations: array("Versioned migrations.", migration, {
    maxItems: Limits.migrations,
    validations: [Rules.uniqueMigrationNames],
  }),
  rollbackOnFailure: boolean("Restore the last good revision of every stage after a failed run.", {
    default: Defaults.rollbackOnFailure,
  }),
  updateWindows: array("When new revisions may roll out.", updateWindow, { maxItems: Limits.updateWindows }),
  windowScope: string("What a closed window holds: Updates (new revisions only) or All (also drift correction).", {
    default: Defaults.windowScope,
    enum: ["Updates", "All"],
  }),
  stages: required(
    array("The stages, applied in order.", stage, {
      minItems: 1,
      maxItems: Limits.stages,
      validations: [Rules.uniqueStageNames],
    }),
  ),
});

// ---------------------------------------------------------------- StageSet status

const condition = object(
  "A condition in the shape of metav1.Condition.",
  {
    type: required(
      string("Type of the condition (Ready, Reconciling, Stalled).", {
        maxLength: 316,
        pattern:
          "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
      }),
    ),
    status: required(string("True, False or Unknown.", { enum: ["True", "False", "Unknown"] })),
    observedGeneration: integer("The generation the condition was set for.", { format: "int64", minimum: 0 }),
    lastTransitionTime: required(dateTime("When the status last changed.")),
    reason: required(
      string("Machine-readable reason in CamelCase.", {
        minLength: 1,
        maxLength: 1024,
        pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
      }),
    ),
    message: required(string("Human-readable detail.", { maxLength: 32768 })),
  },
);

const nameList = (description: string): SchemaNode =>
  array(description, string("A name."), { "x-kubernetes-list-type": "set" });

export const stageSetStatusSchema: SchemaNode = object("The observed state of a StageSet, written by the controller.", {
  observedGeneration: integer("The last generation the controller acted on.", { format: "int64" }),
  conditions: array("Ready, Reconciling and Stalled (kstatus-compatible).", condition, {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
  }),
  lastHandledReconcileAt: string("The last reconcile.fluxcd.io/requestedAt value handled."),
  lastHandledReconcileStage: string("The last stages.metio.wtf/reconcile-stage value handled (<stage> or <stage>@<token>): that stage's action ledger was cleared once."),
  lastAttemptedRevisions: revisionMap("Source revisions of the last run, by <namespace>/<source>."),
  lastAppliedRevisions: revisionMap("Source revisions of the last successful run, by <namespace>/<source>."),
  version: string("The deployed version, written after a fully successful run."),
  pendingMigrations: nameList("Migrations the next run executes."),
  executedMigrations: nameList("Migrations completed in the current version transition."),
  stages: array(
    "Per-stage state, in stage order.",
    object("The state of one stage.", {
      name: required(string("Name of the stage.")),
      phase: required(
        string("Where the stage is.", { enum: ["Pending", "Applying", "Pruning", "Verifying", "Ready", "Failed"] }),
      ),
      appliedRevision: string("The revision last applied."),
      entriesCount: integer("Objects in the stage's inventory.", { format: "int32", minimum: 0 }),
      shards: integer("StageInventory shards of the stage.", { format: "int32", minimum: 0 }),
      message: string("Detail of the phase."),
      executedActions: nameList("Actions completed for ledgerRevision."),
      ledgerRevision: string("The pinned revision the action ledger belongs to."),
    }),
    { "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] },
  ),
  lastAppliedSnapshot: array(
    "The artifacts of the last successful run, for rollback.",
    object("A stage's artifact.", {
      stage: required(string("Name of the stage.")),
      url: required(string("Where the artifact was fetched from.")),
      digest: required(string("Digest of the artifact.")),
      revision: required(string("Revision of the artifact.")),
    }),
  ),
  parkedRevisions: revisionMap(
    "Revisions that failed and were rolled back, by <namespace>/<source>: not retried until a source publishes another revision, the generation changes, or a forced reconcile.",
  ),
  lastRollback: object("The last rollback after a failed run.", {
    at: dateTime("When the rollback finished."),
    message: string("Which stages went from which revision back to which, and why the run failed."),
  }),
  pendingUpdate: object("Revisions held by a closed update window.", {
    revisions: revisionMap("Held revisions, by <namespace>/<source>."),
    nextWindowOpens: dateTime("When the held revisions may roll out."),
  }),
  lastHandledUpdateOverride: string("The last stages.metio.wtf/update-now value handled."),
});

// ---------------------------------------------------------------- StageInventory

export const stageInventorySpecSchema: SchemaNode = object("The objects one shard of a stage applied.", {
  stagePosition: required(integer("Index of the stage in its StageSet.", { format: "int32", minimum: 0 })),
  entries: required(
    array(
      "The applied objects.",
      object("An applied object.", {
        id: required(string("namespace_name_group_kind; the group is empty for the core API.", { minLength: 1 })),
        v: required(string("The applied apiVersion.", { minLength: 1 })),
      }),
    ),
  ),
});

/** The root schema of a kind: apiVersion, kind, metadata, spec and (optionally) status. */
export function rootSchema(description: string, spec: SchemaNode, status?: SchemaNode): SchemaNode {
  return object(description, {
    apiVersion: string("Versioned schema of this object: stages.metio.wtf/v1."),
    kind: string("Kind of this object."),
    metadata: { type: "object" },
    spec: required(spec),
    ...(status === undefined ? {} : { status }),
  });
}

export const stageSetSchema: SchemaNode = rootSchema(
  "A StageSet applies an ordered list of stages, each from a Flux artifact, one after the other: a stage starts only once the previous one is healthy.",
  stageSetSpecSchema,
  stageSetStatusSchema,
);

export const stageInventorySchema: SchemaNode = rootSchema(
  "A StageInventory records what one stage of a StageSet applied, so objects that leave the stage can be pruned. Written only by the controller.",
  stageInventorySpecSchema,
);

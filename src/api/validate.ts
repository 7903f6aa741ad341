/**
 * Offline validation of a StageSet (`stagesetctl build -f`, the admission
 * webhook): the schema checks and the CEL rules the API server applies, in
 * TypeScript, each issue naming the exact field. On top, the cross-field
 * references the schema cannot check: `version.*.stage` and
 * `migrations[].stage` must name a stage.
 *
 * Cron syntax, time zone names and the semver of migrations come from
 * their owners in src/gating (one implementation for the controller, the
 * CLI and the admission webhook). `version.value` is not checked here: an
 * invalid one is the run's `InvalidVersion` (CONTRACT reasons).
 */
import { InvalidDurationError, parseDuration } from "./duration.js";
import { ACTION_OPERATIONS, API_VERSION, STAGESET_KIND } from "./types.js";
import { DATA_BEARING_KINDS, Rules } from "./rules.js";
import { migrationIssues } from "../gating/migrations.js";
import { windowIssues } from "../gating/windows.js";
import { stageSetSpecSchema } from "./schema.js";
import { childPath, isPlainObject, validateAgainstSchema, type ValidationIssue } from "./validate-schema.js";

export type { ValidationIssue } from "./validate-schema.js";

const ACTION_LISTS = ["pre", "post", "onFailure"] as const;

/** Every problem of a StageSet manifest; empty when the API server would accept it. */
export function validateStageSet(obj: unknown): ValidationIssue[] {
  if (!isPlainObject(obj)) return [{ field: "", message: "a StageSet manifest must be an object with apiVersion, kind, metadata and spec" }];
  const issues: ValidationIssue[] = [];
  if (obj.apiVersion !== API_VERSION) {
    issues.push({ field: "apiVersion", message: `must be ${API_VERSION}, not ${JSON.stringify(obj.apiVersion)}` });
  }
  if (obj.kind !== STAGESET_KIND) {
    issues.push({ field: "kind", message: `must be ${STAGESET_KIND}, not ${JSON.stringify(obj.kind)}` });
  }
  const metadata = obj.metadata;
  if (!isPlainObject(metadata) || typeof metadata.name !== "string" || metadata.name === "") {
    issues.push({ field: "metadata.name", message: "is required: name the StageSet" });
  }
  if (obj.spec === undefined || obj.spec === null) {
    issues.push({ field: "spec", message: "is required: a StageSet needs at least spec.stages" });
    return issues;
  }
  issues.push(...validateAgainstSchema(obj.spec, stageSetSpecSchema, "spec"));
  if (isPlainObject(obj.spec)) {
    // A field the schema already refused (a malformed duration, say) is reported once.
    const reported = new Set(issues.map((i) => i.field));
    issues.push(...checkSpecRules(obj.spec, "spec").filter((i) => !reported.has(i.field)));
    if (isPlainObject(metadata)) issues.push(...checkSelfDependency(obj.spec.dependsOn, metadata));
  }
  return issues;
}

function checkSpecRules(spec: Record<string, unknown>, path: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const field of ["interval", "retryInterval", "driftDetectionInterval", "timeout"]) {
    issues.push(...checkDuration(spec[field], childPath(path, field)));
  }
  const stagesPath = childPath(path, "stages");
  const stages = objectsOf(spec.stages);
  issues.push(...uniqueNames(stages, stagesPath, "stage", "rename one of the stages"));
  const stageNames = stages.map(([, stage]) => stage.name).filter((name): name is string => typeof name === "string");

  for (const [i, stage] of stages) {
    const stagePath = childPath(stagesPath, i);
    issues.push(...checkDuration(stage.timeout, childPath(stagePath, "timeout")));
    if (isPlainObject(stage.readyChecks)) issues.push(...checkDuration(stage.readyChecks.timeout, childPath(childPath(stagePath, "readyChecks"), "timeout")));
    if (isPlainObject(stage.actions)) {
      for (const list of ACTION_LISTS) {
        issues.push(...checkActionList(stage.actions[list], childPath(childPath(stagePath, "actions"), list)));
      }
    }
    if (isPlainObject(stage.conflictPolicy)) {
      const rulesPath = childPath(childPath(stagePath, "conflictPolicy"), "rules");
      for (const [j, rule] of objectsOf(stage.conflictPolicy.rules)) issues.push(...checkConflictRule(rule, childPath(rulesPath, j)));
    }
  }

  if (isPlainObject(spec.version)) issues.push(...checkVersion(spec.version, childPath(path, "version"), stageNames));

  const migrationsPath = childPath(path, "migrations");
  const migrations = objectsOf(spec.migrations);
  issues.push(...uniqueNames(migrations, migrationsPath, "migration", "rename one of the migrations"));
  for (const [i, migration] of migrations) {
    const migrationPath = childPath(migrationsPath, i);
    issues.push(...checkStageReference(migration.stage, childPath(migrationPath, "stage"), stageNames));
    issues.push(...checkActionList(migration.actions, childPath(migrationPath, "actions")));
  }

  const windowsPath = childPath(path, "updateWindows");
  for (const [i, window] of objectsOf(spec.updateWindows)) issues.push(...checkUpdateWindow(window, childPath(windowsPath, i)));
  // Cron, time zones and semver have one implementation each, shared with the controller and the webhook.
  const reported = new Set(issues.map((i) => i.field));
  issues.push(...windowIssues(spec.updateWindows, windowsPath).filter((i) => !reported.has(i.field)));
  issues.push(...migrationIssues(spec, path));
  return issues;
}

/** A StageSet that depends on itself would wait forever (DependencyNotReady on its own Ready). */
function checkSelfDependency(dependsOn: unknown, metadata: Record<string, unknown>): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const [i, dep] of objectsOf(dependsOn)) {
    const sameNamespace = dep.namespace === undefined || dep.namespace === "" || dep.namespace === metadata.namespace;
    if (dep.name === metadata.name && sameNamespace) {
      issues.push({ field: `spec.dependsOn[${i}]`, message: `a StageSet cannot depend on itself (${JSON.stringify(dep.name)}); name another StageSet or remove the entry` });
    }
  }
  return issues;
}

/**
 * A duration the schema's pattern admits can still be out of range
 * (`9999999h` overflows Go's int64 nanoseconds) or zero where a wait or an
 * interval needs time.
 */
function checkDuration(value: unknown, path: string): ValidationIssue[] {
  if (typeof value !== "string") return [];
  try {
    if (parseDuration(value, path) <= 0) return [{ field: path, message: `${JSON.stringify(value)} must be longer than zero, e.g. 5m` }];
  } catch (err) {
    const detail = err instanceof InvalidDurationError ? err.problem : err instanceof Error ? err.message : String(err);
    return [{ field: path, message: detail }];
  }
  return [];
}

function checkVersion(version: Record<string, unknown>, path: string, stageNames: string[]): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const sources = ["value", "fromObject", "fromArtifact"].filter((source) => has(version, source));
  if (sources.length !== 1) issues.push({ field: path, message: Rules.exactlyOneVersionSource.message });
  for (const source of ["fromObject", "fromArtifact"]) {
    const ref = version[source];
    if (isPlainObject(ref)) issues.push(...checkStageReference(ref.stage, childPath(childPath(path, source), "stage"), stageNames));
  }
  return issues;
}

function checkStageReference(stage: unknown, path: string, stageNames: string[]): ValidationIssue[] {
  if (typeof stage !== "string" || stage === "" || stageNames.includes(stage)) return [];
  return [
    {
      field: path,
      message: `names no stage of this StageSet (${JSON.stringify(stage)}): use one of ${stageNames.map((n) => JSON.stringify(n)).join(", ") || "the names in spec.stages"}`,
    },
  ];
}

function checkUpdateWindow(window: Record<string, unknown>, path: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const recurring = has(window, "schedule") && has(window, "duration") && !has(window, "from") && !has(window, "to");
  const absolute = has(window, "from") && has(window, "to") && !has(window, "schedule") && !has(window, "duration");
  if (!recurring && !absolute) issues.push({ field: path, message: Rules.windowShape.message });
  if (typeof window.from === "string" && typeof window.to === "string") {
    const from = Date.parse(window.from);
    const to = Date.parse(window.to);
    if (!Number.isNaN(from) && !Number.isNaN(to) && from >= to) {
      issues.push({ field: childPath(path, "to"), message: Rules.windowOrder.message });
    }
  }
  return issues;
}

function checkConflictRule(rule: Record<string, unknown>, path: string): ValidationIssue[] {
  const target = isPlainObject(rule.target) ? rule.target : {};
  const destroysData =
    rule.action === "Recreate" && (DATA_BEARING_KINDS as readonly unknown[]).includes(target.kind) && rule.allowDataLoss !== true;
  return destroysData ? [{ field: childPath(path, "allowDataLoss"), message: Rules.dataLossAcknowledged.message }] : [];
}

function checkActionList(list: unknown, path: string): ValidationIssue[] {
  const actions = objectsOf(list);
  const issues = uniqueNames(actions, path, "action", "rename one of the actions");
  for (const [i, action] of actions) issues.push(...checkAction(action, childPath(path, i)));
  return issues;
}

function checkAction(action: Record<string, unknown>, path: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const operations = ACTION_OPERATIONS.filter((operation) => has(action, operation));
  if (operations.length !== 1) {
    const found = operations.length === 0 ? "none is set" : `found ${operations.join(", ")}`;
    issues.push({ field: path, message: `${Rules.exactlyOneOperation.message} (${found})` });
  }
  if (isPlainObject(action.wait)) {
    const wait = action.wait;
    const waitPath = childPath(path, "wait");
    const valid = has(wait, "duration") ? !has(wait, "target") && !has(wait, "expr") : has(wait, "target") && has(wait, "expr");
    if (!valid) issues.push({ field: waitPath, message: Rules.waitShape.message });
    if (isPlainObject(wait.target) && !(has(wait.target, "name") && !has(wait.target, "selector"))) {
      issues.push({ field: childPath(waitPath, "target"), message: Rules.waitTargetNamesOneObject.message });
    }
  }
  for (const operation of ["patch", "delete"] as const) {
    const body = action[operation];
    if (isPlainObject(body) && isPlainObject(body.target) && has(body.target, "name") === has(body.target, "selector")) {
      issues.push({ field: childPath(childPath(path, operation), "target"), message: Rules.targetNameXorSelector.message });
    }
  }
  return issues;
}

function uniqueNames(items: [number, Record<string, unknown>][], path: string, what: string, fix: string): ValidationIssue[] {
  const firstIndex = new Map<unknown, number>();
  const issues: ValidationIssue[] = [];
  for (const [i, item] of items) {
    if (typeof item.name !== "string") continue;
    const first = firstIndex.get(item.name);
    if (first === undefined) {
      firstIndex.set(item.name, i);
    } else {
      issues.push({
        field: childPath(childPath(path, i), "name"),
        message: `${what} name ${JSON.stringify(item.name)} is already used by ${childPath(path, first)}: ${what} names must be unique, ${fix}`,
      });
    }
  }
  return issues;
}

/** The object items of a list with their indexes; anything else is the schema check's to report. */
function objectsOf(list: unknown): [number, Record<string, unknown>][] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((item, index) => (isPlainObject(item) ? [[index, item] as [number, Record<string, unknown>]] : []));
}

/** CEL's has(): the field is present. */
function has(object: Record<string, unknown>, field: string): boolean {
  return object[field] !== undefined && object[field] !== null;
}

/**
 * The static validation rules of the StageSet API, each once: the CEL the API
 * server evaluates (schema.ts puts them into the CRD) and the message both the
 * API server and the offline validator (validate.ts) show.
 */
import type { CelValidation } from "./schema-builders.js";
import { ACTION_OPERATIONS } from "./types.js";

/** Kinds whose `Recreate` destroys data. */
export const DATA_BEARING_KINDS = ["PersistentVolumeClaim", "PersistentVolume"] as const;

const operationList = ACTION_OPERATIONS.join(", ");

// The API server's cost estimate for a messageExpression naming the duplicate
// (a filter inside string concatenation) exceeds its budget by far, so the
// message is static; validate.ts names the duplicate offline.
function uniqueNames(what: string, fix: string): CelValidation {
  return {
    rule: "self.all(x, self.exists_one(y, y.name == x.name))",
    message: `${what} names must be unique within this list: ${fix}`,
  };
}

export const Rules = {
  uniqueStageNames: uniqueNames("stage", "rename one of the stages"),
  uniqueActionNames: uniqueNames("action", "rename one of the actions"),
  uniqueMigrationNames: uniqueNames("migration", "rename one of the migrations"),

  exactlyOneVersionSource: {
    rule: "[has(self.value), has(self.fromObject), has(self.fromArtifact)].filter(x, x).size() == 1",
    message: "the version comes from exactly one source: set exactly one of value, fromObject or fromArtifact",
  },

  windowShape: {
    rule:
      "(has(self.schedule) && has(self.duration) && !has(self.from) && !has(self.to)) || " +
      "(has(self.from) && has(self.to) && !has(self.schedule) && !has(self.duration))",
    message:
      "an update window is either recurring (schedule and duration) or absolute (from and to): set one of the two pairs and remove the other fields",
  },

  windowOrder: {
    // from/to have format date-time, so CEL sees them as timestamps.
    rule: "!has(self.from) || !has(self.to) || self.from < self.to",
    message: "the update window ends before it starts: set to to a time after from",
    fieldPath: ".to",
  },

  exactlyOneOperation: {
    rule: `[${ACTION_OPERATIONS.map((op) => `has(self.${op})`).join(", ")}].filter(x, x).size() == 1`,
    message: `an action performs exactly one operation: set exactly one of ${operationList}`,
  },

  waitShape: {
    rule: "has(self.duration) ? !has(self.target) && !has(self.expr) : has(self.target) && has(self.expr)",
    message: "a wait action waits either for a duration or for an expression on an object: set duration, or set target and expr together",
  },

  waitTargetNamesOneObject: {
    rule: "!has(self.target) || (has(self.target.name) && !has(self.target.selector))",
    message: "a wait action watches one object: set target.name and remove target.selector",
    fieldPath: ".target",
  },

  targetNameXorSelector: {
    rule: "has(self.target.name) != has(self.target.selector)",
    message: "the target names its objects in exactly one way: set target.name or target.selector, not both",
    fieldPath: ".target",
  },

  dataLossAcknowledged: {
    rule:
      `!(self.action == 'Recreate' && has(self.target.kind) && self.target.kind in [${DATA_BEARING_KINDS.map((k) => `'${k}'`).join(", ")}]) ` +
      "|| (has(self.allowDataLoss) && self.allowDataLoss)",
    message:
      "recreating a PersistentVolumeClaim or PersistentVolume destroys its data: set allowDataLoss: true to accept that, or choose another action",
    fieldPath: ".allowDataLoss",
    reason: "FieldValueRequired",
  },
} satisfies Record<string, CelValidation>;

export type RuleName = keyof typeof Rules;

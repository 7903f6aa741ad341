import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { validateStageSet, type ValidationIssue } from "../../../src/api/validate.js";
import type { Action, StageSet } from "../../../src/api/types.js";
import { fullStageSet } from "./fixtures.js";

function issuesOf(mutate: (stageSet: StageSet) => void): ValidationIssue[] {
  const stageSet = fullStageSet();
  mutate(stageSet);
  return validateStageSet(stageSet);
}

/** Asserts exactly one issue, on `field`, whose message matches `message`. */
function assertSingleIssue(issues: ValidationIssue[], field: string, message: RegExp): void {
  assert.equal(issues.length, 1, `expected one issue, got ${JSON.stringify(issues, null, 2)}`);
  assert.equal(issues[0]!.field, field);
  assert.match(issues[0]!.message, message);
}

const application = (stageSet: StageSet) => stageSet.spec.stages[1]!;
const postActions = (stageSet: StageSet): Action[] => application(stageSet).actions!.post!;

describe("validateStageSet", () => {
  test("accepts a StageSet that uses every part of the spec", () => {
    assert.deepEqual(validateStageSet(fullStageSet()), []);
  });

  test("accepts the smallest StageSet", () => {
    const minimal = {
      apiVersion: "stages.metio.wtf/v1",
      kind: "StageSet",
      metadata: { name: "my-app" },
      spec: { stages: [{ name: "app", sourceRef: { name: "my-app" } }] },
    };
    assert.deepEqual(validateStageSet(minimal), []);
  });

  describe("rules the schema cannot check", () => {
    test("a StageSet that depends on itself is refused; one in another namespace with the same name is not", () => {
      const self = issuesOf((s) => (s.spec.dependsOn = [{ name: s.metadata.name! }]));
      assertSingleIssue(self, "spec.dependsOn[0]", /cannot depend on itself/);
      assert.deepEqual(
        issuesOf((s) => (s.spec.dependsOn = [{ name: s.metadata.name!, namespace: "elsewhere" }])),
        [],
      );
    });

    test("cron, time zone and migration semver problems name their fields", () => {
      const issues = issuesOf((s) => {
        s.spec.updateWindows = [{ type: "Deny", schedule: "0 0 9 * * MON", duration: "1h", timeZone: "Mars/Olympus" }];
        s.spec.migrations![0]!.to = "2.x";
      });
      const fields = issues.map((i) => i.field).sort();
      assert.deepEqual(fields, ["spec.migrations[0].to", "spec.updateWindows[0].schedule", "spec.updateWindows[0].timeZone"], JSON.stringify(issues));
    });
  });

  describe("manifest shape", () => {
    test("refuses something that is not an object", () => {
      assertSingleIssue(validateStageSet("stages: []"), "", /must be an object with apiVersion, kind, metadata and spec/);
    });

    test("refuses another kind, a missing name and a missing spec", () => {
      const issues = validateStageSet({ apiVersion: "stages.metio.wtf/v1beta1", kind: "Kustomization", metadata: {} });
      assert.deepEqual(
        issues.map((i) => i.field),
        ["apiVersion", "kind", "metadata.name", "spec"],
      );
      assert.match(issues[0]!.message, /must be stages\.metio\.wtf\/v1/);
    });
  });

  describe("schema", () => {
    test("requires at least one stage", () => {
      assertSingleIssue(
        issuesOf((s) => {
          s.spec = { stages: [] };
        }),
        "spec.stages",
        /at least 1 item/,
      );
    });

    test("requires stage names to be DNS-1123 labels", () => {
      assertSingleIssue(
        issuesOf((s) => (s.spec.stages[0]!.name = "Infra_1")),
        "spec.stages[0].name",
        /"Infra_1" is not a DNS-1123 label: use lowercase letters/,
      );
    });

    test("reports a missing required field with its path", () => {
      assertSingleIssue(
        issuesOf((s) => delete (s.spec.stages[1] as Partial<StageSet["spec"]["stages"][number]>).sourceRef),
        "spec.stages[1].sourceRef",
        /is required/,
      );
    });

    test("reports an unknown field, so typos do not pass silently", () => {
      assertSingleIssue(
        issuesOf((s) => ((s.spec.stages[0] as unknown as Record<string, unknown>).prnue = false)),
        "spec.stages[0].prnue",
        /is not a known field: remove it or fix its spelling \(known fields: name, sourceRef, path, prune/,
      );
    });

    test("reports a wrong type", () => {
      assertSingleIssue(
        issuesOf((s) => ((s.spec as unknown as Record<string, unknown>).suspend = "yes")),
        "spec.suspend",
        /must be true or false, not string "yes"/,
      );
    });

    test("reports a value outside an enum with the allowed values", () => {
      assertSingleIssue(
        issuesOf((s) => ((s.spec as unknown as Record<string, unknown>).windowScope = "Everything")),
        "spec.windowScope",
        /"Everything" is not allowed: use one of Updates, All/,
      );
    });

    test("reports a malformed duration", () => {
      assertSingleIssue(
        issuesOf((s) => (application(s).timeout = "20 minutes")),
        "spec.stages[1].timeout",
        /"20 minutes" is not a duration: .*e\.g\. 90s, 5m or 1h30m/,
      );
    });

    test("reports a malformed absolute window time", () => {
      assertSingleIssue(
        issuesOf((s) => (s.spec.updateWindows![1]!.from = "24.12.2026")),
        "spec.updateWindows[1].from",
        /not an RFC 3339 time/,
      );
    });

    test("refuses an empty migration target version", () => {
      assertSingleIssue(issuesOf((s) => (s.spec.migrations![0]!.to = "")), "spec.migrations[0].to", /must not be empty/);
    });

    test("refuses a negative retry count", () => {
      assertSingleIssue(issuesOf((s) => (postActions(s)[1]!.retries = -1)), "spec.stages[1].actions.post[1].retries", /at least 0/);
    });

    test("refuses duplicate expected status codes", () => {
      assertSingleIssue(
        issuesOf((s) => (postActions(s)[0]!.http!.expectedStatus = [200, 204, 200])),
        "spec.stages[1].actions.post[0].http.expectedStatus[2]",
        /duplicates 200/,
      );
    });
  });

  describe("static rules", () => {
    test("stage names are unique", () => {
      assertSingleIssue(
        issuesOf((s) => (s.spec.stages[0]!.name = "application")),
        "spec.stages[1].name",
        /stage name "application" is already used by spec\.stages\[0\]: .*rename one of the stages/,
      );
    });

    test("exactly one version source", () => {
      assertSingleIssue(
        issuesOf((s) => (s.spec.version!.value = "2.1.0")),
        "spec.version",
        /set exactly one of value, fromObject or fromArtifact/,
      );
      assertSingleIssue(issuesOf((s) => (s.spec.version = {})), "spec.version", /exactly one/);
    });

    test("version and migrations name existing stages", () => {
      assertSingleIssue(
        issuesOf((s) => (s.spec.version!.fromObject!.stage = "app")),
        "spec.version.fromObject.stage",
        /names no stage of this StageSet \("app"\): use one of "infrastructure", "application"/,
      );
      assertSingleIssue(issuesOf((s) => (s.spec.migrations![0]!.stage = "db")), "spec.migrations[0].stage", /names no stage/);
    });

    test("migration names are unique", () => {
      assertSingleIssue(
        issuesOf((s) => s.spec.migrations!.push({ ...s.spec.migrations![0]! })),
        "spec.migrations[1].name",
        /migration name "backfill-ledger-2-0" is already used by spec\.migrations\[0\]/,
      );
    });

    test("a window is schedule and duration, or from and to", () => {
      assertSingleIssue(
        issuesOf((s) => (s.spec.updateWindows![0]!.from = "2026-12-24T00:00:00Z")),
        "spec.updateWindows[0]",
        /either recurring \(schedule and duration\) or absolute \(from and to\)/,
      );
      assertSingleIssue(issuesOf((s) => delete s.spec.updateWindows![0]!.duration), "spec.updateWindows[0]", /recurring/);
      assertSingleIssue(issuesOf((s) => delete s.spec.updateWindows![1]!.to), "spec.updateWindows[1]", /absolute/);
    });

    test("an absolute window ends after it starts", () => {
      assertSingleIssue(
        issuesOf((s) => (s.spec.updateWindows![1]!.to = "2026-12-23T00:00:00Z")),
        "spec.updateWindows[1].to",
        /ends before it starts: set to to a time after from/,
      );
    });

    test("an action performs exactly one operation, in every action list", () => {
      assertSingleIssue(
        issuesOf((s) => (postActions(s)[0]!.wait = { duration: "5s" })),
        "spec.stages[1].actions.post[0]",
        /set exactly one of job, http, wait, patch, delete, apply \(found http, wait\)/,
      );
      assertSingleIssue(
        issuesOf((s) => delete application(s).actions!.onFailure![0]!.http),
        "spec.stages[1].actions.onFailure[0]",
        /\(none is set\)/,
      );
      assertSingleIssue(
        issuesOf((s) => (s.spec.migrations![0]!.actions[0]!.delete = { target: { apiVersion: "v1", kind: "Pod", name: "x" } })),
        "spec.migrations[0].actions[0]",
        /found job, delete/,
      );
    });

    test("action names are unique within a list, not across lists", () => {
      assertSingleIssue(
        issuesOf((s) => (application(s).actions!.pre![2]!.name = "db-migrate")),
        "spec.stages[1].actions.pre[2].name",
        /action name "db-migrate" is already used by spec\.stages\[1\]\.actions\.pre\[0\]/,
      );
      assert.deepEqual(
        issuesOf((s) => (application(s).actions!.post![0]!.name = "db-migrate")),
        [],
      );
    });

    test("a wait action has a duration, or a target and an expression", () => {
      assertSingleIssue(
        issuesOf((s) => (postActions(s)[1]!.wait!.duration = "1m")),
        "spec.stages[1].actions.post[1].wait",
        /set duration, or set target and expr together/,
      );
      assertSingleIssue(
        issuesOf((s) => delete postActions(s)[1]!.wait!.expr),
        "spec.stages[1].actions.post[1].wait",
        /set duration, or set target and expr together/,
      );
    });

    test("a wait action watches one named object", () => {
      assertSingleIssue(
        issuesOf((s) => {
          const target = postActions(s)[1]!.wait!.target!;
          delete target.name;
          target.selector = "app=web";
        }),
        "spec.stages[1].actions.post[1].wait.target",
        /set target\.name and remove target\.selector/,
      );
    });

    test("patch and delete targets use a name or a selector, not both", () => {
      assertSingleIssue(
        issuesOf((s) => (postActions(s)[2]!.patch!.target.selector = "app=web")),
        "spec.stages[1].actions.post[2].patch.target",
        /set target\.name or target\.selector, not both/,
      );
      assertSingleIssue(
        issuesOf((s) => delete postActions(s)[3]!.delete!.target.selector),
        "spec.stages[1].actions.post[3].delete.target",
        /set target\.name or target\.selector/,
      );
    });

    test("recreating a PersistentVolumeClaim or PersistentVolume needs allowDataLoss", () => {
      assertSingleIssue(
        issuesOf((s) => delete s.spec.stages[0]!.conflictPolicy!.rules![1]!.allowDataLoss),
        "spec.stages[0].conflictPolicy.rules[1].allowDataLoss",
        /destroys its data: set allowDataLoss: true/,
      );
      assertSingleIssue(
        issuesOf((s) => {
          const rule = s.spec.stages[0]!.conflictPolicy!.rules![0]!;
          rule.target = { kind: "PersistentVolume" };
          rule.allowDataLoss = false;
        }),
        "spec.stages[0].conflictPolicy.rules[0].allowDataLoss",
        /allowDataLoss/,
      );
      assert.deepEqual(
        issuesOf((s) => (s.spec.stages[0]!.conflictPolicy!.rules![1]!.action = "KeepExisting")),
        [],
      );
    });

    test("reports every problem at once", () => {
      const issues = issuesOf((s) => {
        s.spec.stages[1]!.name = "infrastructure";
        s.spec.version!.value = "1.0.0";
        s.spec.updateWindows![0]!.to = "2026-12-27T00:00:00Z";
      });
      assert.deepEqual(
        issues.map((i) => i.field),
        ["spec.stages[1].name", "spec.version", "spec.version.fromObject.stage", "spec.migrations[0].stage", "spec.updateWindows[0]"],
      );
    });
  });
});

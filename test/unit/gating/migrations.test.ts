import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Migration } from "../../../src/api/types.js";
import { InvalidSpecError, Reasons, StageSetError } from "../../../src/errors.js";
import { DowngradeRequiresMigrationError, migrationIssues, pendingAfter, planMigrations, type MigrationPlan } from "../../../src/gating/migrations.js";
import { InvalidVersionError } from "../../../src/gating/version.js";

function migration(name: string, to: string, from?: string): Migration {
  return { name, to, stage: "app", actions: [{ name: "run", wait: { duration: "1s" } }], ...(from === undefined ? {} : { from }) };
}

function runOf(plan: MigrationPlan): string[] {
  assert.equal(plan.kind, "upgrade", `expected an upgrade, got ${JSON.stringify(plan)}`);
  return plan.kind === "upgrade" ? plan.run.map((m) => m.name) : [];
}

function blocked(plan: MigrationPlan): Extract<MigrationPlan, { kind: "blocked" }> {
  assert.equal(plan.kind, "blocked", `expected blocked, got ${JSON.stringify(plan)}`);
  return plan as Extract<MigrationPlan, { kind: "blocked" }>;
}

describe("planMigrations", () => {
  const ladder = [migration("to-2.1", "2.1.0"), migration("to-2.0", "2.0.0"), migration("to-1.5", "1.5.0"), migration("to-1.0", "1.0.0")];

  it("runs nothing on a first deployment", () => {
    assert.deepEqual(planMigrations(ladder, undefined, "2.0.0"), { kind: "first" });
    assert.deepEqual(planMigrations(undefined, undefined, "2.0.0"), { kind: "first" });
  });

  it("runs nothing when the version stays, a leading v and build metadata aside", () => {
    assert.deepEqual(planMigrations(ladder, "2.0.0", "2.0.0"), { kind: "same" });
    assert.deepEqual(planMigrations(ladder, "v2.0.0", "2.0.0+build.7"), { kind: "same" });
  });

  it("1.0.0 → 2.0.0 runs the migrations to 1.5.0 and 2.0.0, in ascending order", () => {
    assert.deepEqual(runOf(planMigrations(ladder, "1.0.0", "2.0.0")), ["to-1.5", "to-2.0"]);
  });

  it("excludes a boundary at the deployed version and includes one at the target", () => {
    assert.deepEqual(runOf(planMigrations(ladder, "1.5.0", "2.1.0")), ["to-2.0", "to-2.1"]);
    assert.deepEqual(runOf(planMigrations(ladder, "0.1.0", "1.0.0")), ["to-1.0"]);
    assert.deepEqual(runOf(planMigrations(ladder, "2.0.0", "2.0.1")), []);
  });

  it("keeps declaration order among migrations with the same to", () => {
    const same = [migration("second", "2.0.0"), migration("early", "1.1.0"), migration("third", "v2.0.0"), migration("first-declared-later", "1.9.0")];
    assert.deepEqual(runOf(planMigrations(same, "1.0.0", "2.0.0")), ["early", "first-declared-later", "second", "third"]);
  });

  it("accepts a leading v in to, in the deployed version and in the target", () => {
    assert.deepEqual(runOf(planMigrations([migration("m", "v2.0.0")], "v1.0.0", "V2.0.0")), ["m"]);
  });

  it("runs a migration only when the deployed version matches its from", () => {
    const gated = [migration("from-1", "2.0.0", "1.*")];
    assert.deepEqual(runOf(planMigrations(gated, "0.9.0", "2.0.0")), []);
    assert.deepEqual(runOf(planMigrations(gated, "1.2.0", "2.0.0")), ["from-1"]);
    assert.deepEqual(runOf(planMigrations([migration("x", "2.0.0", "1.x")], "1.9.9", "3.0.0")), ["x"]);
    const range = [migration("r", "2.0.0", ">=1.0.0 <2.0.0")];
    assert.deepEqual(runOf(planMigrations(range, "1.0.0", "2.0.0")), ["r"]);
    assert.deepEqual(runOf(planMigrations(range, "0.9.9", "2.0.0")), []);
  });

  it("orders prereleases before their release", () => {
    const rc = [migration("at-final", "2.0.0"), migration("at-rc", "2.0.0-rc.1")];
    assert.deepEqual(runOf(planMigrations(rc, "1.9.0", "2.0.0-rc.1")), ["at-rc"]);
    assert.deepEqual(runOf(planMigrations(rc, "2.0.0-rc.1", "2.0.0")), ["at-final"]);
    assert.deepEqual(runOf(planMigrations(rc, "1.9.0", "2.0.0")), ["at-rc", "at-final"]);
    assert.deepEqual(runOf(planMigrations(rc, "2.0.0-rc.1", "2.0.0-rc.2")), []);
    assert.deepEqual(runOf(planMigrations(rc, "2.0.0-beta.3", "2.0.0-rc.1")), ["at-rc"]);
  });

  it("lets a deployed prerelease match a from range it lies in", () => {
    const gated = [migration("from-1", "2.0.0", "1.*")];
    assert.deepEqual(runOf(planMigrations(gated, "1.5.0-rc.1", "2.0.0")), ["from-1"]);
    assert.deepEqual(runOf(planMigrations(gated, "2.0.0-rc.1", "2.0.0")), []);
    assert.deepEqual(runOf(planMigrations([migration("below-2", "2.0.0", "<2.0.0")], "2.0.0-rc.1", "2.0.0")), ["below-2"]);
  });

  it("2.0.0 → 1.0.0 is blocked by the migration to 2.0.0, naming it, both versions and the way out", () => {
    const plan = blocked(planMigrations([migration("backfill", "2.0.0", "1.*")], "2.0.0", "1.0.0"));
    assert.equal(plan.migration.name, "backfill");
    assert.deepEqual(plan.crossed.map((m) => m.name), ["backfill"]);
    assert.equal(
      plan.message,
      'deploying 1.0.0 over 2.0.0 would cross migration "backfill" (to 2.0.0); a migration cannot be undone: deploy 2.0.0 or later, or undo what it did by hand and remove it from spec.migrations',
    );
  });

  it("names every crossed migration; the first is the lowest", () => {
    const plan = blocked(planMigrations(ladder, "2.1.0", "1.2.0"));
    assert.deepEqual(plan.crossed.map((m) => m.name), ["to-1.5", "to-2.0", "to-2.1"]);
    assert.equal(plan.migration.name, "to-1.5");
    assert.match(plan.message, /^deploying 1\.2\.0 over 2\.1\.0 would cross migrations "to-1\.5" \(to 1\.5\.0\), "to-2\.0" \(to 2\.0\.0\) and "to-2\.1" \(to 2\.1\.0\); migrations cannot be undone: deploy 2\.1\.0 or later, or undo what they did by hand and remove them from spec\.migrations$/);
  });

  it("lets a downgrade that crosses no migration proceed", () => {
    assert.deepEqual(planMigrations(ladder, "1.9.0", "1.6.0"), { kind: "downgrade", run: [] });
    assert.deepEqual(planMigrations(ladder, "2.0.0", "1.5.0").kind, "blocked");
    assert.deepEqual(planMigrations([migration("m", "1.5.0")], "2.0.0", "1.5.0"), { kind: "downgrade", run: [] });
    assert.deepEqual(planMigrations(undefined, "2.0.0", "1.0.0"), { kind: "downgrade", run: [] });
    assert.deepEqual(planMigrations([migration("rc", "2.0.0")], "2.0.0-rc.2", "2.0.0-rc.1"), { kind: "downgrade", run: [] });
    assert.equal(planMigrations([migration("rc", "2.0.0-rc.2")], "2.0.0", "2.0.0-rc.1").kind, "blocked");
  });

  it("blocks a target below a migration that already ran in the unfinished transition", () => {
    // 1.0.0 → 2.0.0 ran "to-1.5", then failed: status.version is still 1.0.0.
    const back = blocked(planMigrations(ladder, "1.0.0", "1.0.0", ["to-1.5"]));
    assert.deepEqual(back.crossed.map((m) => m.name), ["to-1.5"]);
    assert.match(back.message, /^deploying 1\.0\.0 over 1\.0\.0 would leave behind migration "to-1\.5" \(to 1\.5\.0\), which already ran in the unfinished transition \(status\.executedMigrations\); a migration cannot be undone: deploy 1\.5\.0 or later/);
    assert.equal(planMigrations(ladder, "1.0.0", "1.2.0", ["to-1.5"]).kind, "blocked");
    assert.equal(planMigrations(ladder, "1.0.0", "0.5.0", ["to-1.5"]).kind, "blocked");
    // Still part of the plan, or no longer known: not blocking.
    assert.deepEqual(runOf(planMigrations(ladder, "1.0.0", "1.5.0", ["to-1.5"])), ["to-1.5"]);
    assert.deepEqual(runOf(planMigrations(ladder, "1.0.0", "2.0.0", ["to-1.5", "removed-from-spec"])), ["to-1.5", "to-2.0"]);
    assert.deepEqual(planMigrations(ladder, "1.0.0", "1.0.0", ["removed-from-spec"]), { kind: "same" });
  });

  it("names both kinds of crossing in one message", () => {
    const plan = blocked(planMigrations(ladder, "1.5.0", "1.2.0", ["to-2.0"]));
    assert.deepEqual(plan.crossed.map((m) => m.name), ["to-1.5", "to-2.0"]);
    assert.match(plan.message, /would cross migration "to-1\.5" \(to 1\.5\.0\) and would leave behind migration "to-2\.0" \(to 2\.0\.0\), which already ran/);
    assert.match(plan.message, /deploy 2\.0\.0 or later, or undo what they did/);
  });

  it("throws InvalidVersion for a deployed or target version that is not semver, InvalidSpec for a bad to or from", () => {
    assert.throws(() => planMigrations(ladder, "1.0", "2.0.0"), (err: unknown) => err instanceof InvalidVersionError && /status\.version/.test(err.message));
    assert.throws(() => planMigrations(ladder, "1.0.0", "latest"), (err: unknown) => err instanceof InvalidVersionError && /"latest"/.test(err.message));
    assert.throws(() => planMigrations([migration("m", "2.x")], "1.0.0", "2.0.0"), (err: unknown) => err instanceof InvalidSpecError && /^spec\.migrations\[0\]\.to: "2\.x"/.test(err.message));
    assert.throws(
      () => planMigrations([migration("ok", "1.1.0"), migration("m", "2.0.0", "one")], "1.0.0", "2.0.0"),
      (err: unknown) => err instanceof InvalidSpecError && /^spec\.migrations\[1\]\.from: "one"/.test(err.message),
    );
  });
});

describe("DowngradeRequiresMigrationError", () => {
  it("is a terminal StageSetError with reason DowngradeRequiresMigration", () => {
    const plan = blocked(planMigrations([migration("backfill", "2.0.0")], "2.0.0", "1.0.0"));
    const err = new DowngradeRequiresMigrationError(plan.message);
    assert.ok(err instanceof StageSetError);
    assert.equal(err.reason, Reasons.DowngradeRequiresMigration);
    assert.equal(err.terminal, true);
    assert.equal(err.name, "DowngradeRequiresMigrationError");
    assert.equal(err.message, plan.message);
  });
});

describe("pendingAfter", () => {
  it("keeps the planned migrations not yet in the ledger, and the ledger entries still planned", () => {
    assert.deepEqual(pendingAfter(["a", "b", "c"], ["b", "stale"]), { pending: ["a", "c"], ledger: ["b"] });
    assert.deepEqual(pendingAfter(["a", "b", "c"], ["c", "a"]), { pending: ["b"], ledger: ["a", "c"] });
    assert.deepEqual(pendingAfter(["a", "b"], undefined), { pending: ["a", "b"], ledger: [] });
    assert.deepEqual(pendingAfter(["a", "b"], ["a", "b"]), { pending: [], ledger: ["a", "b"] });
    assert.deepEqual(pendingAfter([], ["a"]), { pending: [], ledger: [] });
  });
});

describe("migrationIssues", () => {
  const spec = (migrations: unknown) => ({ stages: [{ name: "app" }], migrations });

  it("accepts exact versions (a leading v too) and ranges or globs", () => {
    const ok = [
      migration("a", "2.0.0", "1.*"),
      migration("b", "v2.1.0", "1.x"),
      migration("c", "3.0.0", ">=1.0.0 <3.0.0"),
      migration("d", "3.0.0-rc.1", "^2.1"),
      migration("e", "4.0.0"),
      migration("f", "2.0.0", "2.0.0-rc.1"),
    ];
    assert.deepEqual(migrationIssues(spec(ok)), []);
  });

  it("refuses a to that is not an exact version, naming the field and the fix", () => {
    const issues = migrationIssues(spec([migration("a", "2.0.0"), migration("b", "2.x"), migration("c", "2.0"), migration("d", ">=2.0.0")]));
    assert.deepEqual(
      issues.map((i) => i.field),
      ["spec.migrations[1].to", "spec.migrations[2].to", "spec.migrations[3].to"],
    );
    assert.match(issues[0]!.message, /^"2\.x" is not an exact semantic version; write the boundary the migration crosses as MAJOR\.MINOR\.PATCH, e\.g\. 2\.0\.0/);
  });

  it("refuses a from that is not a range, or that admits no version below to", () => {
    const issues = migrationIssues(spec([migration("a", "2.0.0", "one.two"), migration("b", "2.0.0", ">=3.0.0"), migration("c", "2.0.0", ">2.0.0 <1.0.0"), migration("d", "2.0.0", "2.0.0")]));
    assert.deepEqual(
      issues.map((i) => i.field),
      ["spec.migrations[0].from", "spec.migrations[1].from", "spec.migrations[2].from", "spec.migrations[3].from"],
    );
    assert.match(issues[0]!.message, /^"one\.two" is not a semver range; .* e\.g\. 1\.\*, 1\.x or >=1\.0\.0 <2\.0\.0$/);
    assert.match(issues[1]!.message, /^">=3\.0\.0" matches no version below to \(2\.0\.0\), so the migration never runs .* e\.g\. 1\.\*$/);
    assert.match(issues[2]!.message, /matches no version at all/);
    assert.match(issues[3]!.message, /matches no version below to/);
  });

  it("checks from even when to is invalid, and uses the given field path", () => {
    assert.deepEqual(
      migrationIssues(spec([migration("a", "bad", "worse")]), "StageSet.spec").map((i) => i.field),
      ["StageSet.spec.migrations[0].to", "StageSet.spec.migrations[0].from"],
    );
  });

  it("leaves version.value, types and missing fields to others, and never throws", () => {
    assert.deepEqual(migrationIssues({ version: { value: "not-a-version" }, stages: [] }), []);
    for (const input of [undefined, null, 7, "spec", [], {}, { migrations: "x" }, { migrations: [null, 3, "m", [], {}] }, { migrations: [{ to: 2, from: {} }, { from: ["1.*"] }] }]) {
      assert.deepEqual(migrationIssues(input), [], JSON.stringify(input));
    }
  });
});

/**
 * Versioned migrations: which `spec.migrations` a version transition runs,
 * whether a downgrade may proceed, and the checks of their semver fields.
 *
 * Rules from the "Versioned migrations" page and the contract: a migration
 * runs when the deployed version crosses its boundary `to` (an exact semver)
 * on the way up, and only when the deployed version matches its `from` (a
 * semver range or glob, any version when omitted); it runs once — a retry
 * never re-runs a completed one (`status.executedMigrations` is the ledger of
 * the transition in flight); a downgrade that would step back over a
 * migration is refused with `DowngradeRequiresMigration`. A first deployment
 * (no `status.version` yet) runs none: there is nothing to migrate from.
 *
 * Prereleases take their place in semver order: `2.0.0-rc.1` < `2.0.0`, so
 * crossing into `2.0.0-rc.1` does not cross a boundary at `2.0.0` (the final
 * release does, later), and a migration `to: 2.0.0-rc.1` runs on the way
 * into the release candidate and not again for `2.0.0`. A deployed
 * prerelease matches a `from` range it lies in (node-semver's
 * `includePrerelease`): `1.5.0-rc.1` matches `1.*`. Without that option
 * node-semver lets no range but one naming the same MAJOR.MINOR.PATCH match
 * a prerelease, and a migration would be skipped silently for anyone who
 * deployed a release candidate.
 *
 * `to` is read like every other version here (see normalizeVersion): a
 * leading `v` is accepted, build metadata is ignored.
 */
import semver from "semver";
import type { Migration } from "../api/types.js";
import { InvalidSpecError, Reasons, StageSetError } from "../errors.js";
import { childPath, isPlainObject, type ValidationIssue } from "../api/validate-schema.js";
import { InvalidVersionError, normalizeVersion } from "./version.js";

const RANGE_OPTIONS: semver.RangeOptions = { includePrerelease: true };

/** What a version transition does about migrations. */
export type MigrationPlan =
  /** No deployed version yet: a first deployment runs no migrations. */
  | { kind: "first" }
  /** The target is the deployed version: nothing to cross. */
  | { kind: "same" }
  /** Target above the deployed version: run `run`, in this order, before their stages (may be empty). */
  | { kind: "upgrade"; run: Migration[] }
  /** Target below the deployed version, crossing no migration: proceeds, runs none. */
  | { kind: "downgrade"; run: [] }
  /**
   * Refused (reason DowngradeRequiresMigration): deploying the target would
   * step back over migrations that cannot be undone. `crossed` lists them in
   * ascending `to` order, `migration` is the first of them; `message` names
   * them all, both versions and what to do.
   */
  | { kind: "blocked"; migration: Migration; crossed: Migration[]; message: string };

/**
 * A downgrade would step back over a migration. Terminal: the same versions
 * give the same answer; it heals when the target moves up, or the migration
 * is undone by hand and taken out of `spec.migrations`.
 */
export class DowngradeRequiresMigrationError extends StageSetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(Reasons.DowngradeRequiresMigration, message, { ...options, terminal: true });
  }
}

/**
 * Plans the transition from `deployed` (`status.version`; undefined before
 * the first fully successful run) to `target` (from resolveVersion).
 *
 * - no `deployed` → `first` (no migrations run);
 * - `target` = `deployed` → `same`;
 * - `target` > `deployed` → `upgrade` with every migration whose `to` lies
 *   in (deployed, target] and whose `from`, when set, `deployed` satisfies,
 *   in ascending `to` order (declaration order among equal `to`);
 * - `target` < `deployed` → `blocked` when some migration's `to` lies in
 *   (target, deployed] — its `from` does not matter: whether it ran on the
 *   way up is not recorded, so it is assumed to have — else `downgrade`.
 *
 * `executed` (`status.executedMigrations`, the ledger of an unfinished
 * transition) closes a gap the deployed version alone leaves: a migration
 * that already ran in a transition that then failed (so `status.version`
 * did not move) is as irreversible as one behind the deployed version. Any
 * such migration whose `to` is above `target` blocks the plan, whatever its
 * kind. Names in `executed` that are not in `migrations` are ignored.
 *
 * Throws InvalidVersionError when `deployed` or `target` is not a semantic
 * version, InvalidSpecError for a migration whose `to` or `from` is invalid
 * (migrationIssues reports those before a run; this is the backstop).
 */
export function planMigrations(
  migrations: readonly Migration[] | undefined,
  deployed: string | undefined,
  target: string,
  executed: readonly string[] = [],
): MigrationPlan {
  if (deployed === undefined) return { kind: "first" };
  const next = checkedVersion(target, "the version to deploy");
  const current = checkedVersion(deployed, "status.version (the deployed version)");
  const list = (migrations ?? []).map((migration, index) => ({ migration, index, to: checkedTo(migration, index) }));

  const crossedBack = semver.lt(next, current) ? list.filter((m) => semver.gt(m.to, next) && semver.lte(m.to, current)) : [];
  const ranAhead = list.filter((m) => executed.includes(m.migration.name) && semver.gt(m.to, next) && !crossedBack.includes(m));
  if (crossedBack.length > 0 || ranAhead.length > 0) {
    const crossed = sortByTo([...crossedBack, ...ranAhead]);
    return {
      kind: "blocked",
      migration: crossed[0]!.migration,
      crossed: crossed.map((m) => m.migration),
      message: blockedMessage(next, current, sortByTo(crossedBack), sortByTo(ranAhead)),
    };
  }

  const order = semver.compare(next, current);
  if (order === 0) return { kind: "same" };
  if (order < 0) return { kind: "downgrade", run: [] };
  const run = list.filter((m) => semver.gt(m.to, current) && semver.lte(m.to, next) && matchesFrom(m.migration, m.index, current));
  return { kind: "upgrade", run: sortByTo(run).map((m) => m.migration) };
}

/** Where a transition stands against its ledger; see pendingAfter. */
export interface MigrationProgress {
  /** Planned migrations still to run, in plan order. */
  pending: string[];
  /** The ledger to keep in `status.executedMigrations`: planned migrations already run, in plan order. */
  ledger: string[];
}

/**
 * Which of the `planned` migration names (the `run` of an upgrade plan, in
 * order) still have to run, given `executed` (`status.executedMigrations`).
 *
 * The ledger rule: a migration already in `executedMigrations` is never
 * re-run while it is part of the plan — a retry, a restart or another
 * replica picks up after the last completed one. Names in the ledger that
 * the plan no longer holds (the target moved) are dropped from the ledger to
 * keep; planMigrations is where a dropped name that still matters (its `to`
 * above the new target) blocks. The controller appends a name to the ledger
 * as each migration completes and clears the ledger when it writes
 * `status.version` after a fully successful run.
 */
export function pendingAfter(planned: readonly string[], executed: readonly string[] | undefined): MigrationProgress {
  const done = new Set(executed ?? []);
  return {
    pending: planned.filter((name) => !done.has(name)),
    ledger: planned.filter((name) => done.has(name)),
  };
}

/**
 * The semver problems of `spec.migrations` in `spec` (the StageSet's spec,
 * its path given by `field`): each `to` must be an exact semantic version (a
 * leading `v` accepted, as for spec.version), each `from` a semver range or
 * glob that admits some version below its `to` (else the migration can never
 * run). Each issue names the exact field, e.g. `spec.migrations[1].from`,
 * and the fix.
 *
 * Fields of the wrong type or missing are left to the schema check; stage
 * references and duplicate names to src/api/validate.ts; `version.value` to
 * resolveVersion (an invalid value is a run-time InvalidVersion). Never
 * throws, whatever `spec` holds.
 */
export function migrationIssues(spec: unknown, field = "spec"): ValidationIssue[] {
  if (!isPlainObject(spec) || !Array.isArray(spec.migrations)) return [];
  const issues: ValidationIssue[] = [];
  const listPath = childPath(field, "migrations");
  spec.migrations.forEach((migration: unknown, i: number) => {
    if (!isPlainObject(migration)) return;
    const path = childPath(listPath, i);
    const to = typeof migration.to === "string" ? migration.to : undefined;
    if (to !== undefined && normalizeVersion(to) === undefined) issues.push({ field: childPath(path, "to"), message: toIssue(to) });
    if (typeof migration.from === "string") {
      const problem = fromIssue(migration.from, to === undefined ? undefined : normalizeVersion(to));
      if (problem !== undefined) issues.push({ field: childPath(path, "from"), message: problem });
    }
  });
  return issues;
}

function toIssue(to: string): string {
  return `${JSON.stringify(to)} is not an exact semantic version; write the boundary the migration crosses as MAJOR.MINOR.PATCH, e.g. 2.0.0 (a leading v is accepted; for a range of previous versions use from)`;
}

function fromIssue(from: string, to: string | undefined): string | undefined {
  if (validRange(from) === undefined) {
    return `${JSON.stringify(from)} is not a semver range; write the versions to migrate from as a range or glob, e.g. 1.*, 1.x or >=1.0.0 <2.0.0`;
  }
  const lowest = minVersion(from);
  if (lowest === undefined) return `${JSON.stringify(from)} matches no version at all, so the migration never runs; write a range such as 1.* or >=1.0.0 <2.0.0`;
  if (to !== undefined && semver.gte(lowest, to)) {
    const example = semver.major(to) > 0 ? `${semver.major(to) - 1}.*` : `<${to}`;
    return `${JSON.stringify(from)} matches no version below to (${to}), so the migration never runs (it runs on the way up from a version matching from); make from match versions below ${to}, e.g. ${example}`;
  }
  return undefined;
}

function validRange(range: string): string | undefined {
  try {
    return semver.validRange(range, RANGE_OPTIONS) ?? undefined;
  } catch {
    return undefined;
  }
}

function minVersion(range: string): string | undefined {
  try {
    return semver.minVersion(range, RANGE_OPTIONS)?.version;
  } catch {
    return undefined;
  }
}

function checkedVersion(version: string, what: string): string {
  const normalized = normalizeVersion(version);
  if (normalized === undefined) {
    throw new InvalidVersionError(`${what} ${JSON.stringify(version)} is not a semantic version (MAJOR.MINOR.PATCH, a leading v is accepted)`);
  }
  return normalized;
}

function checkedTo(migration: Migration, index: number): string {
  const to = typeof migration.to === "string" ? normalizeVersion(migration.to) : undefined;
  if (to === undefined) throw new InvalidSpecError(`spec.migrations[${index}].to: ${toIssue(String(migration.to))}`);
  return to;
}

function matchesFrom(migration: Migration, index: number, deployed: string): boolean {
  if (migration.from === undefined) return true;
  if (validRange(migration.from) === undefined) throw new InvalidSpecError(`spec.migrations[${index}].from: ${fromIssue(migration.from, undefined)}`);
  return semver.satisfies(deployed, migration.from, RANGE_OPTIONS);
}

interface Indexed {
  migration: Migration;
  index: number;
  to: string;
}

/** Ascending `to`; declaration order among equal `to`. */
function sortByTo<T extends Indexed>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => semver.compare(a.to, b.to) || a.index - b.index);
}

function blockedMessage(target: string, deployed: string, crossedBack: readonly Indexed[], ranAhead: readonly Indexed[]): string {
  const all = [...crossedBack, ...ranAhead];
  const several = all.length > 1;
  const highest = sortByTo(all)[all.length - 1]!.to;
  const parts: string[] = [];
  if (crossedBack.length > 0) parts.push(`would cross ${describe(crossedBack)}`);
  if (ranAhead.length > 0) {
    parts.push(
      `would leave behind ${describe(ranAhead)}, which already ran in the unfinished transition (status.executedMigrations)`,
    );
  }
  return (
    `deploying ${target} over ${deployed} ${parts.join(" and ")}; ${several ? "migrations" : "a migration"} cannot be undone: ` +
    `deploy ${highest} or later, or undo what ${several ? "they" : "it"} did by hand and remove ${several ? "them" : "it"} from spec.migrations`
  );
}

function describe(list: readonly Indexed[]): string {
  const names = list.map((m) => `${JSON.stringify(m.migration.name)} (to ${m.to})`);
  const noun = names.length > 1 ? "migrations" : "migration";
  const joined = names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}` : names[0]!;
  return `${noun} ${joined}`;
}

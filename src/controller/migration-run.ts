/**
 * Running versioned migrations during a rollout (CONTRACT `migrations`,
 * documentation "Versioned migrations"): before a stage's pre actions, the
 * planned migrations anchored at that stage run in ascending `to` order,
 * each action with the semantics of a stage action. A completed migration is
 * recorded in `status.executedMigrations` (status written before the next
 * one starts), so a retry, a restart or another replica never runs it again
 * for this transition.
 */
import { ActionLedger } from "../actions/ledger.js";
import { runActionList, type ActionHooks } from "../actions/runner.js";
import type { ActionEnv, ActionExecutor } from "../actions/types.js";
import type { Action, Migration, StageSet, StageSetStatus, VersionSpec } from "../api/types.js";
import { errorMessage, Reasons, StageSetError } from "../errors.js";
import { DowngradeRequiresMigrationError, planMigrations } from "../gating/migrations.js";
import { resolveVersion, type VersionInputs } from "../gating/version.js";

/** A migration that failed: reason MigrationFailed, naming the migration and the action. */
export class MigrationFailedError extends StageSetError {
  constructor(
    readonly migration: string,
    message: string,
    cause: unknown,
  ) {
    super(Reasons.MigrationFailed, message, { cause });
  }
}

export interface MigrationRunContext {
  stageSet: StageSet;
  /** The run's status: `pendingMigrations`/`executedMigrations` are updated in place. */
  status: StageSetStatus;
  /** Writes the status; resolves once written (the ledger's durability). */
  persist(): Promise<void>;
  /** The action environment of the anchor stage, without list and timeout. */
  env: Omit<ActionEnv, "list" | "timeoutMs">;
  executorFor(action: Action): ActionExecutor;
  hooks?: ActionHooks;
  /** Observers for events and metrics. */
  started(migration: Migration): void;
  completed(migration: Migration, seconds: number): void;
  failed(migration: Migration, error: MigrationFailedError): void;
}

/**
 * Runs `planned` migrations (already filtered to this stage and ordered) that
 * `status.executedMigrations` does not hold. Each action runs with a Job name
 * and ledger scoped to the migration (`migration/<name>/<to>` stands for the
 * revision), so two migrations using one Job source run two Jobs. Throws
 * MigrationFailedError on the first failing migration; a shutdown or a
 * superseded run propagates as the signal's reason.
 */
export async function runMigrations(ctx: MigrationRunContext, planned: readonly Migration[]): Promise<void> {
  for (const migration of planned) {
    if ((ctx.status.executedMigrations ?? []).includes(migration.name)) continue;
    ctx.env.signal.throwIfAborted();
    ctx.started(migration);
    const started = performance.now();
    // Actions inside one migration are not ledgered across crashes: an interrupted migration runs again whole.
    const ledger = new ActionLedger({ name: ctx.env.stage.name, phase: "Pending" }, migrationRevision(migration), async () => {});
    try {
      await runActionList({
        list: "pre",
        actions: migration.actions,
        env: { ...ctx.env, revision: migrationRevision(migration) },
        ledger,
        executorFor: ctx.executorFor,
        ...(ctx.hooks ? { hooks: ctx.hooks } : {}),
      });
    } catch (err) {
      if (ctx.env.signal.aborted) throw err;
      const failure = new MigrationFailedError(migration.name, `migration "${migration.name}" (to ${migration.to}, before stage "${migration.stage}") failed: ${stripStagePrefix(errorMessage(err))}`, err);
      ctx.failed(migration, failure);
      throw failure;
    }
    ctx.status.executedMigrations = [...(ctx.status.executedMigrations ?? []), migration.name];
    ctx.status.pendingMigrations = (ctx.status.pendingMigrations ?? []).filter((name) => name !== migration.name);
    await ctx.persist();
    ctx.completed(migration, (performance.now() - started) / 1000);
  }
}

/** The revision a migration's actions run under: stable across retries (a finished Job is found finished), distinct per migration. */
export function migrationRevision(migration: Migration): string {
  return `migration/${migration.name}/${migration.to}`;
}

/** `stage "app": pre action "x" failed: …` → `action "x" failed: …` (the migration names its stage itself). */
function stripStagePrefix(message: string): string {
  return message.replace(/^stage "[^"]*": pre action /, "action ");
}

/** The version a rollout deploys and the migrations it crosses. */
export interface VersionTransition {
  /** The normalised version to deploy (written to `status.version` after a fully successful run). */
  target: string;
  /** Where it was read (for logs). */
  origin: string;
  /** Every migration of the transition in run order, including those the ledger already holds. */
  planned: Migration[];
}

/**
 * Resolves `version` through `inputs` and plans the migrations from
 * `status.version` to it, updating `status.pendingMigrations` and the
 * transition's ledger `status.executedMigrations` (kept to the planned
 * ones, so a new transition starts empty) in place. Throws
 * InvalidVersionError or DowngradeRequiresMigrationError, both terminal.
 */
export async function planTransition(version: VersionSpec, migrations: readonly Migration[] | undefined, status: StageSetStatus, inputs: VersionInputs): Promise<VersionTransition> {
  const resolved = await resolveVersion(version, inputs);
  const plan = planMigrations(migrations, status.version, resolved.version, status.executedMigrations ?? []);
  if (plan.kind === "blocked") throw new DowngradeRequiresMigrationError(plan.message);
  if (plan.kind !== "upgrade") {
    if (status.pendingMigrations?.length) delete status.pendingMigrations;
    return { target: resolved.version, origin: resolved.origin, planned: [] };
  }
  const planned = new Set(plan.run.map((m) => m.name));
  const executed = (status.executedMigrations ?? []).filter((name) => planned.has(name));
  status.executedMigrations = executed;
  status.pendingMigrations = plan.run.map((m) => m.name).filter((name) => !executed.includes(name));
  return { target: resolved.version, origin: resolved.origin, planned: plan.run };
}

import type { StageStatus } from "../api/types.js";
import type { ActionList } from "./types.js";

/**
 * The action ledger of one stage: which actions completed for the stage's
 * pinned revision (`status.stages[].executedActions`, `ledgerRevision`).
 * Entries are `<list>/<name>`. A new revision starts a fresh ledger; a
 * reconcile-stage request clears it once. `persist` writes the status and
 * must resolve before the next step starts, so a crash after an action
 * completed never runs it again (CONTRACT "Actions").
 */
export class ActionLedger {
  readonly #status: StageStatus;
  readonly #persist: () => Promise<void>;

  /**
   * `status` is the stage's status entry (mutated in place); `revision` the
   * stage's pinned revision; `persist` writes the StageSet's status.
   */
  constructor(status: StageStatus, revision: string, persist: () => Promise<void>, options: { clear?: boolean } = {}) {
    this.#status = status;
    this.#persist = persist;
    if (status.ledgerRevision !== revision || options.clear) {
      status.ledgerRevision = revision;
      status.executedActions = [];
    }
  }

  /** The ledger key of an action. */
  static key(list: ActionList, name: string): string {
    return `${list}/${name}`;
  }

  /** True when `list`/`name` completed for this revision. */
  has(list: ActionList, name: string): boolean {
    return (this.#status.executedActions ?? []).includes(ActionLedger.key(list, name));
  }

  /** Records a completed action and writes status before returning. */
  async record(list: ActionList, name: string): Promise<void> {
    if (this.has(list, name)) return;
    this.#status.executedActions = [...(this.#status.executedActions ?? []), ActionLedger.key(list, name)];
    await this.#persist();
  }

  get revision(): string | undefined {
    return this.#status.ledgerRevision;
  }
}

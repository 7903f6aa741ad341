import type { ObjectRef } from "./ports.js";
import { describeObject, objectId } from "./objects.js";

/**
 * What a write step did to one object. Apply: created, configured (changed
 * in place), unchanged, recreated (deleted and created again under a
 * conflict policy), skipped (left as it is under KeepExisting). Prune and
 * teardown: deleted, kept (left in place: `prune: false`, the prune-disabled
 * label, held by another stage or StageSet).
 */
export type ChangeAction = "created" | "configured" | "unchanged" | "recreated" | "skipped" | "deleted" | "kept";

export interface ChangeSetEntry {
  /** Inventory id (`namespace_name_group_kind`). */
  id: string;
  ref: ObjectRef;
  action: ChangeAction;
  /** Why an object was skipped, recreated or kept. */
  message?: string;
}

// The order actions are listed in a summary.
const SUMMARY_ORDER: readonly ChangeAction[] = ["created", "configured", "recreated", "deleted", "skipped", "kept"];
// How a summary names an action (a stage's deletions are prunes).
const SUMMARY_WORD: Record<ChangeAction, string> = {
  created: "created",
  configured: "configured",
  unchanged: "unchanged",
  recreated: "recreated",
  skipped: "skipped",
  deleted: "pruned",
  kept: "kept",
};

/**
 * One record of every write a run made, shared by apply, prune and teardown
 * (pkg/ssa's ChangeSet). Steps append as they go, so a caller holding the
 * set still knows what was done when a step throws half way.
 */
export class ChangeSet {
  readonly entries: ChangeSetEntry[] = [];

  /** Appends one object's outcome; returns the entry. */
  add(ref: ObjectRef, action: ChangeAction, message?: string): ChangeSetEntry {
    const entry: ChangeSetEntry = { id: objectId(ref), ref, action };
    if (message !== undefined) entry.message = message;
    this.entries.push(entry);
    return entry;
  }

  /** Appends every entry of `other`. */
  append(other: ChangeSet | readonly ChangeSetEntry[]): void {
    this.entries.push(...(other instanceof ChangeSet ? other.entries : other));
  }

  /** Entries with one of `actions`. */
  only(...actions: ChangeAction[]): ChangeSetEntry[] {
    return this.entries.filter((e) => actions.includes(e.action));
  }

  /** Number of entries per action. */
  counts(): Partial<Record<ChangeAction, number>> {
    const counts: Partial<Record<ChangeAction, number>> = {};
    for (const e of this.entries) counts[e.action] = (counts[e.action] ?? 0) + 1;
    return counts;
  }

  /** True when some entry changed the cluster (anything but unchanged and kept). */
  get changed(): boolean {
    return this.entries.some((e) => e.action !== "unchanged" && e.action !== "kept");
  }

  /**
   * `created 3, configured 1, pruned 2, skipped 1 (KeepExisting)`, or "" when
   * nothing changed. Unchanged objects are not counted; kept ones only next
   * to a change.
   */
  summary(): string {
    if (!this.changed) return "";
    const counts = this.counts();
    return SUMMARY_ORDER.filter((a) => counts[a])
      .map((a) => `${SUMMARY_WORD[a]} ${counts[a]}${a === "skipped" ? " (KeepExisting)" : ""}`)
      .join(", ");
  }

  /** `Deployment shop/web` per changed object, for logs (at most `limit`). */
  describeChanges(limit = 20): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const e of this.entries) {
      if (e.action === "unchanged") continue;
      const list = (out[e.action] ??= []);
      if (list.length < limit) list.push(describeObject(e.ref));
    }
    return out;
  }
}

import type { KubeObject, Stage } from "../api/types.js";
import type { ObjectRef } from "../apply/ports.js";

/** How one rendered object compares with the cluster. */
export type ChangeKind = "create" | "update" | "recreate" | "unchanged" | "kept";

export interface ObjectChange {
  kind: ChangeKind;
  ref: ObjectRef;
  /** The object as it is now; absent for a create. */
  live?: KubeObject;
  /** The object as it would be after the apply (for `kept`: what was rendered). */
  merged: KubeObject;
  /** Why an object is recreated or kept (the API server's refusal). */
  note?: string;
  /**
   * Why a created object is shown as rendered rather than as the API server's
   * dry run would return it: its kind is installed by a CRD the rollout
   * applies first (in this stage or an earlier one).
   */
  notDryRun?: string;
}

/** What a reconcile would do to one stage. */
export interface StageChanges {
  stage: Stage;
  index: number;
  /** The artifact revision the stage would roll out; absent for a local tree. */
  revision?: string;
  objects: ObjectChange[];
  /** Objects that left the stage's inventory and would be deleted. */
  pruned: ObjectRef[];
}

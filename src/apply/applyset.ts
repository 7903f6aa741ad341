import { createHash } from "node:crypto";
import type { InventoryEntry } from "../api/types.js";
import { parseObjectId } from "./objects.js";

/** Keys of the ApplySet specification (KEP-3659). */
export const ApplySetKeys = {
  partOf: "applyset.kubernetes.io/part-of",
  id: "applyset.kubernetes.io/id",
  tooling: "applyset.kubernetes.io/tooling",
  containsGroupKinds: "applyset.kubernetes.io/contains-group-kinds",
  additionalNamespaces: "applyset.kubernetes.io/additional-namespaces",
  /** On the parent kind's CRD. */
  isParentType: "applyset.kubernetes.io/is-parent-type",
} as const;

export const APPLYSET_TOOLING = "stageset-controller/v1";

/**
 * The ApplySet's own annotation listing members' apiVersion and kind
 * (`apps/v1:Deployment,v1:ConfigMap`). contains-group-kinds has no versions,
 * and listing members needs one; this is how `applyset` mode (which stores
 * no entries) finds the members of a kind the stage no longer renders.
 */
export const MEMBER_KINDS_ANNOTATION = "stages.metio.wtf/applyset-member-kinds";

export interface ParentIdentity {
  name: string;
  namespace: string;
  kind: string;
  group: string;
}

/** `applyset-<base64url(sha256(name.namespace.kind.group))>-v1`, as KEP-3659 specifies. */
export function applySetId(parent: ParentIdentity): string {
  const digest = createHash("sha256")
    .update(`${parent.name}.${parent.namespace}.${parent.kind}.${parent.group}`)
    .digest("base64url");
  return `applyset-${digest}-v1`;
}

/** `Deployment.apps`, or `ConfigMap` for the core group. */
export function groupKind(group: string, kind: string): string {
  return group ? `${kind}.${group}` : kind;
}

export interface MemberKind {
  apiVersion: string;
  kind: string;
}

/** The parent's ApplySet annotations for a member set (sorted, so equal sets give equal strings). */
export function parentAnnotations(members: readonly InventoryEntry[], parentNamespace: string): Record<string, string> {
  const groupKinds = new Set<string>();
  const namespaces = new Set<string>();
  const kinds = new Set<string>();
  for (const entry of members) {
    const { namespace, group, kind } = parseObjectId(entry.id);
    groupKinds.add(groupKind(group, kind));
    kinds.add(`${entry.v}:${kind}`);
    if (namespace && namespace !== parentNamespace) namespaces.add(namespace);
  }
  const annotations: Record<string, string> = {
    [ApplySetKeys.tooling]: APPLYSET_TOOLING,
    [ApplySetKeys.containsGroupKinds]: [...groupKinds].sort().join(","),
    [MEMBER_KINDS_ANNOTATION]: [...kinds].sort().join(","),
  };
  if (namespaces.size > 0) annotations[ApplySetKeys.additionalNamespaces] = [...namespaces].sort().join(",");
  return annotations;
}

export function parseMemberKinds(annotation: string | undefined): MemberKind[] {
  if (!annotation) return [];
  return annotation
    .split(",")
    .filter((s) => s.includes(":"))
    .map((s) => {
      const colon = s.lastIndexOf(":");
      return { apiVersion: s.slice(0, colon), kind: s.slice(colon + 1) };
    });
}

export function parseNamespaces(annotation: string | undefined): string[] {
  return (annotation ?? "").split(",").filter((s) => s !== "");
}

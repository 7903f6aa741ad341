import type { StageSet } from "../api/types.js";

/**
 * Which StageSets care about which sources and StageSets. The controller
 * indexes its StageSet cache with these keys so that a source revision change
 * (or a dependency becoming Ready) enqueues exactly the StageSets that refer to
 * it, without listing anything.
 */

const FLUX_SOURCE_GROUP = "source.toolkit.fluxcd.io";

/** The API group of an apiVersion (`""` for the core group). */
export function groupOf(apiVersion: string | undefined): string {
  if (!apiVersion) return "";
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? "" : apiVersion.slice(0, slash);
}

/** Key of a source object as seen from the watch of its kind. */
export function sourceKey(group: string, kind: string, namespace: string, name: string): string {
  return `${group}/${kind}/${namespace}/${name}`;
}

/**
 * Index keys of every source a StageSet's stages and actions read. A sourceRef
 * without apiVersion is a Flux source kind (ExternalArtifact by default).
 */
export function sourceKeysOf(stageSet: StageSet): string[] {
  const namespace = stageSet.metadata.namespace ?? "";
  const keys = new Set<string>();
  const add = (ref: { apiVersion?: string; kind?: string; name: string; namespace?: string } | undefined) => {
    if (!ref) return;
    const kind = ref.kind ?? "ExternalArtifact";
    const group = ref.apiVersion ? groupOf(ref.apiVersion) : FLUX_SOURCE_GROUP;
    keys.add(sourceKey(group, kind, ref.namespace ?? namespace, ref.name));
  };
  for (const stage of stageSet.spec.stages ?? []) {
    add(stage.sourceRef);
    for (const list of [stage.actions?.pre, stage.actions?.post, stage.actions?.onFailure]) {
      for (const action of list ?? []) {
        add(action.job?.sourceRef);
        add(action.apply?.sourceRef);
      }
    }
  }
  for (const migration of stageSet.spec.migrations ?? []) {
    for (const action of migration.actions ?? []) {
      add(action.job?.sourceRef);
      add(action.apply?.sourceRef);
    }
  }
  return [...keys];
}

/**
 * Keys a changed source object must be looked up by: its own key and, for an
 * ExternalArtifact published by a producer, the producer's key (the
 * `spec.sourceRef` back-pointer), so StageSets naming the producer follow it.
 */
export function keysForSourceEvent(obj: {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string };
  spec?: unknown;
}): string[] {
  const namespace = obj.metadata.namespace ?? "";
  const keys = [sourceKey(groupOf(obj.apiVersion), obj.kind, namespace, obj.metadata.name ?? "")];
  if (obj.kind === "ExternalArtifact") {
    const ref = (obj.spec as { sourceRef?: { apiVersion?: string; kind?: string; name?: string; namespace?: string } } | undefined)
      ?.sourceRef;
    if (ref?.kind && ref.name) keys.push(sourceKey(groupOf(ref.apiVersion), ref.kind, ref.namespace ?? namespace, ref.name));
  }
  return keys;
}

/** Index keys of the StageSets a StageSet depends on. */
export function dependencyKeysOf(stageSet: StageSet): string[] {
  const namespace = stageSet.metadata.namespace ?? "";
  return (stageSet.spec.dependsOn ?? []).map((d) => `${d.namespace ?? namespace}/${d.name}`);
}

import { isMap, isSeq, parseDocument, stringify, YAMLSeq } from "yaml";
import type { Patch, PatchTarget } from "../api/types.js";
import { BuildError } from "../errors.js";

const TARGET_FIELDS: readonly (keyof PatchTarget)[] = [
  "group",
  "version",
  "kind",
  "name",
  "namespace",
  "labelSelector",
  "annotationSelector",
];

export function patchField(stageIndex: number, patchIndex: number): string {
  return `spec.stages[${stageIndex}].patches[${patchIndex}]`;
}

/**
 * Checks what can be checked without kustomize: each patch is non-empty YAML
 * (a strategic-merge object or a JSON6902 operation list). A failure names the
 * patch; everything else is judged by kustomize itself.
 */
export function validatePatches(patches: readonly Patch[], stageIndex: number): void {
  for (const [j, patch] of patches.entries()) {
    const field = patchField(stageIndex, j);
    if (typeof patch.patch !== "string" || patch.patch.trim() === "") {
      throw new BuildError(`${field}.patch is empty; give a strategic-merge patch or a JSON6902 operation list`, { terminal: true });
    }
    const doc = parseDocument(patch.patch, { prettyErrors: false });
    const error = doc.errors[0];
    if (error) {
      throw new BuildError(`${field}.patch is not valid YAML: ${error.message.split("\n")[0]}`, { terminal: true });
    }
    if (!isMap(doc.contents) && !isSeq(doc.contents)) {
      throw new BuildError(`${field}.patch must be a YAML object (strategic merge) or a list of JSON6902 operations`, { terminal: true });
    }
  }
}

function kustomizePatch(patch: Patch): Record<string, unknown> {
  const entry: Record<string, unknown> = { patch: patch.patch };
  if (patch.target) {
    const target: Record<string, string> = {};
    for (const field of TARGET_FIELDS) {
      const value = patch.target[field];
      if (value) target[field] = value;
    }
    entry["target"] = target;
  }
  return entry;
}

/**
 * Appends stage patches to a kustomization's `patches`, after the user's own,
 * as Flux does with `spec.patches`; every other field is kept as written.
 * `text` is the existing kustomization file (possibly empty).
 */
export function addPatchesToKustomization(text: string, patches: readonly Patch[], sourceName: string): string {
  const doc = parseDocument(text, { prettyErrors: false });
  const error = doc.errors[0];
  if (error) throw new BuildError(`${sourceName} is not valid YAML: ${error.message.split("\n")[0]}`);
  if (doc.contents === null) return stringify({ patches: patches.map(kustomizePatch) });
  if (!isMap(doc.contents)) throw new BuildError(`${sourceName} must be a YAML mapping`);

  let list = doc.get("patches");
  if (list === undefined || list === null) {
    list = new YAMLSeq();
    doc.set("patches", list);
  }
  if (!isSeq(list)) throw new BuildError(`${sourceName}: field "patches" must be a list`);
  for (const patch of patches) list.add(doc.createNode(kustomizePatch(patch)));
  return doc.toString();
}

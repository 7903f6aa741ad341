import { Document } from "yaml";
import type { KubeObject } from "../api/types.js";
import { hasMaskedValues, maskSecret } from "./secrets.js";

/** One object as YAML, keys in the order they came, long strings never folded. */
export function toYaml(value: unknown): string {
  return new Document(value).toString({ lineWidth: 0 });
}

/**
 * A multi-document YAML stream, each document opened by `---`. Secret
 * values are masked unless `showSecrets`, with a comment saying how to see them.
 */
export function toYamlStream(objects: readonly KubeObject[], showSecrets: boolean): string {
  return objects
    .map((obj) => {
      const shown = showSecrets ? obj : maskSecret(obj);
      const doc = new Document(shown);
      if (!showSecrets && hasMaskedValues(obj) && doc.contents) doc.contents.commentBefore = " Secret values masked; pass --show-secrets to reveal them";
      return `---\n${doc.toString({ lineWidth: 0 })}`;
    })
    .join("");
}

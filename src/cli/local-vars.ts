import { readFile } from "node:fs/promises";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "../api/types.js";
import { VarSourceUnavailableError, type VarSource } from "../build/substitute.js";
import { KubeConfigError } from "../kube/errors.js";
import { UsageError } from "./errors.js";

/** The flag that gives `postBuild.substituteFrom` ConfigMaps and Secrets without a cluster. */
export const SUBSTITUTE_FROM_FILE_FLAG = "--substitute-from-file";

type Data = { data?: Record<string, string> };

/** ConfigMaps and Secrets read from local manifest files, by kind and name (and namespace, when the manifest sets one). */
export class LocalVarObjects {
  readonly #objects = new Map<string, KubeObject[]>();

  get size(): number {
    return this.#objects.size;
  }

  add(object: KubeObject): void {
    const key = `${object.kind}/${object.metadata.name}`;
    this.#objects.set(key, [...(this.#objects.get(key) ?? []), object]);
  }

  find(kind: "ConfigMap" | "Secret", namespace: string, name: string): KubeObject | undefined {
    const candidates = this.#objects.get(`${kind}/${name}`) ?? [];
    return candidates.find((o) => o.metadata.namespace === namespace) ?? candidates.find((o) => !o.metadata.namespace);
  }
}

/** Reads `--substitute-from-file` files: YAML streams of ConfigMaps and Secrets (a `kind: List` is unpacked). */
export async function loadLocalVarObjects(files: readonly string[]): Promise<LocalVarObjects> {
  const objects = new LocalVarObjects();
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      throw new UsageError(`${SUBSTITUTE_FROM_FILE_FLAG} ${file}: cannot read it (${(err as { code?: string }).code ?? "error"})`);
    }
    const pending: unknown[] = [];
    for (const [i, doc] of parseAllDocuments(text).entries()) {
      // The parser's messages may quote the file, which holds secret values.
      if (doc.errors.length > 0) throw new UsageError(`${SUBSTITUTE_FROM_FILE_FLAG} ${file}: document ${i + 1} is not valid YAML (${doc.errors[0]!.code})`);
      pending.push(doc.toJS({ maxAliasCount: 100 }));
    }
    while (pending.length > 0) {
      const value = pending.shift() as Partial<KubeObject> | null;
      if (value === null || typeof value !== "object") continue;
      if (typeof value.kind === "string" && value.kind.endsWith("List") && Array.isArray(value["items"])) {
        pending.push(...(value["items"] as unknown[]));
        continue;
      }
      const name = value.metadata?.name;
      if ((value.kind === "ConfigMap" || value.kind === "Secret") && value.apiVersion === "v1" && typeof name === "string") {
        objects.add(value as KubeObject);
      }
    }
  }
  return objects;
}

/** A Secret as the API returns it: `stringData` folded into base64 `data`. */
function asStored(object: KubeObject): Data {
  const data: Record<string, string> = {};
  for (const [key, value] of Object.entries((object["data"] ?? {}) as Record<string, unknown>)) data[key] = String(value);
  if (object.kind === "Secret") {
    for (const [key, value] of Object.entries((object["stringData"] ?? {}) as Record<string, unknown>)) {
      data[key] = Buffer.from(String(value), "utf8").toString("base64");
    }
  }
  return { data };
}

const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ECONNRESET", "EAI_AGAIN", "UND_ERR_CONNECT_TIMEOUT"]);

/** Why the cluster cannot be read, if `err` says there is none (no kubeconfig, nothing answering). */
function noCluster(err: unknown): string | undefined {
  if (err instanceof KubeConfigError) return err.message;
  for (let cause: unknown = err, depth = 0; cause && depth < 5; cause = (cause as { cause?: unknown }).cause, depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === "string" && UNREACHABLE.has(code)) return `the cluster cannot be reached (${code})`;
  }
  return undefined;
}

/**
 * The CLI's VarSource: ConfigMaps and Secrets given with
 * --substitute-from-file first, then the cluster. Without a cluster, a
 * reference fails with VarSourceUnavailableError saying how to give the
 * values, instead of a connection error.
 */
export function offlineAwareVarSource(cluster: VarSource, local: LocalVarObjects): VarSource {
  const read = async (kind: "ConfigMap" | "Secret", namespace: string, name: string) => {
    const found = local.find(kind, namespace, name);
    if (found) return asStored(found);
    try {
      return await (kind === "ConfigMap" ? cluster.getConfigMap(namespace, name) : cluster.getSecret(namespace, name));
    } catch (err) {
      const why = noCluster(err);
      if (why === undefined) throw err;
      throw new VarSourceUnavailableError(
        `can only be read from a cluster, and there is none: ${why}. ` +
          `Give its manifest with ${SUBSTITUTE_FROM_FILE_FLAG} FILE, set the variables in postBuild.substitute, ` +
          `or connect to a cluster (--kubeconfig, --context or --server)`,
        { cause: err },
      );
    }
  };
  return {
    getConfigMap: (namespace, name) => read("ConfigMap", namespace, name),
    getSecret: (namespace, name) => read("Secret", namespace, name),
  };
}

import type { KubeClient } from "../kube/client.js";
import type { VarSource } from "./substitute.js";

type Data = { data?: Record<string, string> } | undefined;

/**
 * Reads substitution variables from the cluster. The client may be given
 * lazily, so a render that substitutes nothing (an offline `stagesetctl
 * build`) never connects.
 */
export function kubeVarSource(client: KubeClient | (() => Promise<KubeClient>)): VarSource {
  const resolve = typeof client === "function" ? client : async () => client;
  return {
    getConfigMap: async (namespace, name) => (await resolve()).get({ apiVersion: "v1", kind: "ConfigMap", namespace, name }) as Promise<Data>,
    getSecret: async (namespace, name) => (await resolve()).get({ apiVersion: "v1", kind: "Secret", namespace, name }) as Promise<Data>,
  };
}

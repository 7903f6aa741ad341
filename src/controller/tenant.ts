import type { StageSet } from "../api/types.js";
import { InvalidSpecError } from "../errors.js";
import { KubeClient } from "../kube/client.js";

export interface TenantClient {
  client: KubeClient;
  /** Releases a remote cluster's connections; a no-op for the local cluster. */
  close(): void;
}

/**
 * The identity every cluster operation of one StageSet runs as: the
 * controller itself, the StageSet's ServiceAccount (impersonated), and/or a
 * remote cluster from `spec.kubeConfig.secretRef` (read with the controller's
 * own identity: connecting is the controller's job).
 */
export async function tenantClient(controller: KubeClient, stageSet: StageSet): Promise<TenantClient> {
  const namespace = stageSet.metadata.namespace ?? "";
  let client = controller;
  let close = () => {};
  const secretRef = stageSet.spec.kubeConfig?.secretRef;
  if (secretRef) {
    const key = secretRef.key ?? "value";
    const origin = `Secret ${namespace}/${secretRef.name} key "${key}" (spec.kubeConfig.secretRef)`;
    const secret = await controller.get({ apiVersion: "v1", kind: "Secret", namespace, name: secretRef.name });
    if (!secret) throw new InvalidSpecError(`${origin} does not exist: create it or fix spec.kubeConfig.secretRef.name`);
    const encoded = (secret.data as Record<string, string> | undefined)?.[key];
    if (!encoded) throw new InvalidSpecError(`${origin} has no such key: store the kubeconfig under "${key}" or set spec.kubeConfig.secretRef.key`);
    const remote = KubeClient.fromKubeConfigString(Buffer.from(encoded, "base64").toString("utf8"), { origin });
    client = remote;
    close = () => remote.close();
  }
  const serviceAccount = stageSet.spec.serviceAccountName;
  if (serviceAccount) client = client.asServiceAccount(namespace, serviceAccount);
  return { client, close };
}

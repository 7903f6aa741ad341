import type { StageSet } from "../api/types.js";
import { tenantClient, type TenantClient } from "../controller/tenant.js";
import type { KubeClient } from "../kube/client.js";
import { UsageError } from "./errors.js";
import { describeStageSet } from "./stageset-input.js";

/**
 * The client that reads and dry-runs a StageSet's objects where the
 * controller would apply them: the cluster of `spec.kubeConfig` if set, as
 * the user running the CLI — or, with `--as-tenant`, impersonating
 * `spec.serviceAccountName` exactly like the controller does.
 */
export async function targetClient(user: KubeClient, stageSet: StageSet, asTenant: boolean): Promise<TenantClient> {
  if (asTenant && !stageSet.spec.serviceAccountName) {
    throw new UsageError(`--as-tenant: StageSet ${describeStageSet(stageSet)} sets no spec.serviceAccountName to impersonate; drop --as-tenant`);
  }
  if (asTenant) return tenantClient(user, stageSet);
  const { serviceAccountName: _notImpersonated, ...spec } = stageSet.spec;
  return tenantClient(user, { ...stageSet, spec });
}

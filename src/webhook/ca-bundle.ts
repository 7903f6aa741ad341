/**
 * Self-signed mode: the CA bundle goes into `clientConfig.caBundle` of every
 * webhook of the ValidatingWebhookConfiguration named by
 * `--webhook-validating-config-name`, so the API server trusts the serving
 * certificate (Kubernetes docs, "Dynamic Admission Control": caBundle is a
 * PEM bundle, base64 in the object).
 *
 * The write is a strategic merge patch keyed by webhook name (the `webhooks`
 * list merges on `name`), sent only when some webhook's bundle differs: it
 * touches nothing but the `caBundle` fields, so it does not fight Helm or a
 * GitOps tool over the rest of the object (they should ignore `caBundle`).
 * Replicas all patch the bundle of the one shared Secret, so their patches
 * agree; a replica that read the Secret just before another rotated it may
 * briefly write the older bundle back, which is harmless (both bundles trust
 * the CAs of both serving certificates, see cert-secret.ts) and undone by the
 * next sync.
 */
import type { KubeObject } from "../api/types.js";
import type { KubeClient } from "../kube/client.js";

export const WEBHOOK_CONFIGURATION_API_VERSION = "admissionregistration.k8s.io/v1";
export const WEBHOOK_CONFIGURATION_KIND = "ValidatingWebhookConfiguration";

export type CaBundleClient = Pick<KubeClient, "get" | "patch">;

interface Webhook {
  name: string;
  clientConfig?: { caBundle?: string };
}

/** The ValidatingWebhookConfiguration does not exist: nothing can call the webhook with a trusted certificate. */
export class WebhookConfigurationMissingError extends Error {
  constructor(name: string) {
    super(
      `ValidatingWebhookConfiguration ${name} not found: the chart installs it; ` +
        `--webhook-validating-config-name must name it for the self-signed certificate mode`,
    );
    this.name = "WebhookConfigurationMissingError";
  }
}

/**
 * Sets `caBundle` of every webhook of ValidatingWebhookConfiguration
 * `configName` to `bundlePem` (PEM text; stored base64). Returns the names of
 * the webhooks it changed (empty: all were current, no request sent but the
 * read). Throws {@link WebhookConfigurationMissingError} when the
 * configuration does not exist and the KubeApiError of a failed read or patch.
 */
export async function ensureCaBundle(client: CaBundleClient, configName: string, bundlePem: string): Promise<string[]> {
  const ref = { apiVersion: WEBHOOK_CONFIGURATION_API_VERSION, kind: WEBHOOK_CONFIGURATION_KIND, name: configName };
  const config = await client.get<KubeObject & { webhooks?: Webhook[] }>(ref);
  if (!config) throw new WebhookConfigurationMissingError(configName);
  const wanted = Buffer.from(bundlePem, "utf8").toString("base64");
  const stale = (config.webhooks ?? []).filter((webhook) => webhook.clientConfig?.caBundle !== wanted).map((webhook) => webhook.name);
  if (stale.length === 0) return [];
  await client.patch(ref, { webhooks: stale.map((name) => ({ name, clientConfig: { caBundle: wanted } })) }, "strategic");
  return stale;
}

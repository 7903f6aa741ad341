import { KubeConfig } from "./kubeconfig-file.js";
import { KubeConfigError } from "./errors.js";

/**
 * The controller's own connection: `--kubeconfig` if given, else KUBECONFIG,
 * the in-cluster ServiceAccount, or ~/.kube/config (controller-runtime's
 * order, as docs/configuration.md says; see src/kube/kubeconfig-file.ts).
 */
export function loadKubeConfig(options: { path?: string; context?: string } = {}): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (options.path) kc.loadFromFile(options.path);
    else kc.loadFromDefault(process.env, undefined, "controller");
    if (options.context) kc.setCurrentContext(options.context);
  } catch (err) {
    const where = options.path ?? "KUBECONFIG / in-cluster ServiceAccount / ~/.kube/config";
    throw new KubeConfigError(`cannot load kubeconfig from ${where}: ${(err as Error).message}`, { cause: err });
  }
  if (!kc.getCurrentCluster()) {
    throw new KubeConfigError(
      `no current cluster in kubeconfig (${options.path ?? "default locations"}): set current-context or pass --kubeconfig`,
    );
  }
  return kc;
}

export interface RemoteKubeConfigOptions {
  /** Names the origin in error messages, e.g. `Secret payments/remote key "value"`. */
  origin: string;
  /** Allow exec credential plugins and auth-provider entries (they run programs in the controller's pod). */
  allowExec?: boolean;
}

/**
 * Parses a kubeconfig that a tenant supplied (`spec.kubeConfig.secretRef`).
 * It is untrusted: file references (certificate-authority, client-key,
 * tokenFile, …) would read the controller's own filesystem — its
 * ServiceAccount token included — and exec plugins would run commands in the
 * controller's pod, so both are refused unless explicitly allowed.
 */
export function parseRemoteKubeConfig(text: string, options: RemoteKubeConfigOptions): KubeConfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromString(text);
  } catch (err) {
    throw new KubeConfigError(`${options.origin} is not a valid kubeconfig: ${(err as Error).message}`, { cause: err });
  }
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user) {
    throw new KubeConfigError(
      `${options.origin}: the kubeconfig has no current-context with a cluster and a user; set current-context`,
    );
  }
  const fileRefs = [
    cluster.caFile && "certificate-authority",
    user.certFile && "client-certificate",
    user.keyFile && "client-key",
    user.authProvider?.config?.tokenFile && "tokenFile",
  ].filter(Boolean);
  if (fileRefs.length > 0) {
    throw new KubeConfigError(
      `${options.origin}: the kubeconfig refers to files (${fileRefs.join(", ")}); embed the data instead ` +
        `(certificate-authority-data, client-certificate-data, client-key-data, token)`,
    );
  }
  if (!options.allowExec && (user.exec || user.authProvider)) {
    throw new KubeConfigError(
      `${options.origin}: the kubeconfig uses an exec or auth-provider credential plugin, which the controller ` +
        `refuses by default; use a static token or client certificate`,
    );
  }
  return kc;
}

import { KubeConfig, type Cluster, type User } from "../kube/kubeconfig-file.js";
import { parseDuration } from "../api/duration.js";
import { KubeClient } from "../kube/client.js";
import { KubeConfigError } from "../kube/errors.js";
import { UsageError } from "./errors.js";

/**
 * The kubectl connection flags (genericclioptions.ConfigFlags) the CLI
 * accepts. Each overrides the matching part of the loaded kubeconfig.
 */
export interface ConnectionFlags {
  kubeconfig?: string;
  context?: string;
  cluster?: string;
  user?: string;
  namespace?: string;
  as?: string;
  asGroup?: string[];
  server?: string;
  token?: string;
  username?: string;
  password?: string;
  certificateAuthority?: string;
  clientCertificate?: string;
  clientKey?: string;
  tlsServerName?: string;
  insecureSkipTlsVerify?: boolean;
  requestTimeout?: string;
}

const DEFAULT_NAMESPACE = "default";
// kubectl's --request-timeout=0 means "no timeout"; a timer needs some bound.
const NO_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * The cluster connection of one CLI run, made on first use so commands that
 * need no cluster (`build -f … --source-dir …`) never load a kubeconfig.
 */
export class Connection {
  readonly #flags: ConnectionFlags;
  readonly #env: NodeJS.ProcessEnv;
  #kubeConfig: KubeConfig | undefined;
  #client: KubeClient | undefined;

  constructor(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env) {
    this.#flags = flags;
    this.#env = env;
    requestTimeoutMs(flags.requestTimeout); // a bad value is a usage error before anything runs
  }

  /** `-n`, else the current context's namespace, else `default`. Never fails: offline runs have no kubeconfig. */
  get namespace(): string {
    if (this.#flags.namespace) return this.#flags.namespace;
    try {
      return contextNamespace(this.kubeConfig()) ?? DEFAULT_NAMESPACE;
    } catch {
      return DEFAULT_NAMESPACE;
    }
  }

  /** Whether `-n/--namespace` was given. */
  get namespaceExplicit(): boolean {
    return Boolean(this.#flags.namespace);
  }

  /** The kubeconfig with every connection flag applied. Throws KubeConfigError (or UsageError for a bad flag). */
  kubeConfig(): KubeConfig {
    this.#kubeConfig ??= buildKubeConfig(this.#flags, this.#env);
    return this.#kubeConfig;
  }

  /** The client acting as the user (with `--as`/`--as-group` impersonation). */
  client(): KubeClient {
    if (!this.#client) {
      const timeoutMs = requestTimeoutMs(this.#flags.requestTimeout);
      let client = KubeClient.fromKubeConfig(this.kubeConfig(), {
        userAgent: "stagesetctl",
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      });
      if (this.#flags.as) client = client.impersonate({ user: this.#flags.as, groups: this.#flags.asGroup ?? [] });
      else if (this.#flags.asGroup?.length) throw new UsageError("--as-group needs --as: impersonating groups requires a user to impersonate");
      this.#client = client;
    }
    return this.#client;
  }

  close(): void {
    this.#client?.close();
  }
}

/** Loads the kubeconfig (`--kubeconfig`, else KUBECONFIG, ~/.kube/config, in-cluster) and applies the flags. */
export function buildKubeConfig(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const loaded = new KubeConfig();
  const where = flags.kubeconfig ?? (env.KUBECONFIG ? `KUBECONFIG (${env.KUBECONFIG})` : "~/.kube/config or the in-cluster ServiceAccount");
  try {
    if (flags.kubeconfig) loaded.loadFromFile(flags.kubeconfig);
    else loaded.loadFromDefault();
  } catch (err) {
    throw new KubeConfigError(`cannot load the kubeconfig from ${where}: ${(err as Error).message}; pass --kubeconfig FILE or --server URL`, { cause: err });
  }
  const contextName = flags.context ?? loaded.getCurrentContext();
  const context = loaded.getContextObject(contextName);
  if (flags.context && !context) {
    const known = loaded.getContexts().map((c) => c.name);
    throw new UsageError(`--context "${flags.context}": no such context in ${where}; use one of: ${known.join(", ") || "(none defined)"}`);
  }
  const clusterName = flags.cluster ?? context?.cluster ?? "stagesetctl";
  const userName = flags.user ?? context?.user ?? "stagesetctl";
  const baseCluster = loaded.getCluster(clusterName);
  if (flags.cluster && !baseCluster) throw new UsageError(`--cluster "${flags.cluster}": no such cluster in ${where}; use one of: ${loaded.getClusters().map((c) => c.name).join(", ") || "(none defined)"}`);
  const baseUser = loaded.getUser(userName);
  if (flags.user && !baseUser) throw new UsageError(`--user "${flags.user}": no such user in ${where}; use one of: ${loaded.getUsers().map((u) => u.name).join(", ") || "(none defined)"}`);

  const cluster: Cluster = {
    ...(baseCluster ?? { name: clusterName, server: "", skipTLSVerify: false }),
    ...(flags.server ? { server: flags.server } : {}),
    ...(flags.certificateAuthority ? { caFile: flags.certificateAuthority, caData: undefined } : {}),
    ...(flags.tlsServerName ? { tlsServerName: flags.tlsServerName } : {}),
    ...(flags.insecureSkipTlsVerify ? { skipTLSVerify: true } : {}),
  };
  if (!cluster.server) {
    throw new KubeConfigError(`no cluster to talk to: ${where} has no current context with a cluster; pass --kubeconfig, --context or --server`);
  }
  const user: User = { ...(baseUser ?? { name: userName }) };
  const userOverrides: Record<string, unknown> = {};
  if (flags.token) Object.assign(userOverrides, { token: flags.token, exec: undefined, authProvider: undefined });
  if (flags.username) Object.assign(userOverrides, { username: flags.username, password: flags.password ?? "", exec: undefined, authProvider: undefined });
  if (flags.clientCertificate) Object.assign(userOverrides, { certFile: flags.clientCertificate, certData: undefined });
  if (flags.clientKey) Object.assign(userOverrides, { keyFile: flags.clientKey, keyData: undefined });

  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ ...user, ...userOverrides }],
    contexts: [{ name: "stagesetctl", cluster: cluster.name, user: user.name, ...(context?.namespace ? { namespace: context.namespace } : {}) }],
    currentContext: "stagesetctl",
  });
  return kc;
}

function contextNamespace(kc: KubeConfig): string | undefined {
  return kc.getContextObject(kc.getCurrentContext())?.namespace || undefined;
}

/** kubectl's `--request-timeout`: `0` for none, a bare number of seconds, or a duration (`30s`, `1m`). */
export function requestTimeoutMs(value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (/^\d+$/.test(value)) return value === "0" ? NO_TIMEOUT_MS : Number(value) * 1000;
  try {
    const ms = parseDuration(value, "--request-timeout");
    return ms === 0 ? NO_TIMEOUT_MS : ms;
  } catch {
    throw new UsageError(`--request-timeout "${value}" is not a duration: use seconds (30), a duration (30s, 1m) or 0 for no timeout`);
  }
}

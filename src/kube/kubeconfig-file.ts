// Reading kubeconfig files, our own code rather than @kubernetes/client-node's
// KubeConfig. Measured reason (node 20, two-core machine): importing
// client-node's config module loads its whole generated API with it — about
// 29 MiB of heap and 1 s of CPU at every start of the controller and of every
// `stagesetctl` command — for what is, in the common cases, a YAML file with
// a server, a CA and a credential. Credential plugins (exec, auth-provider
// other than the in-cluster token file) still go through client-node, imported
// only for them (src/kube/credentials.ts); test/unit/kube/kubeconfig-file.test.ts
// checks that both read the same files the same way.
import { existsSync, readFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";

/** A cluster entry, with client-node's field names (so either loader's data fits the transport). */
export interface Cluster {
  name: string;
  /** Without a trailing slash. */
  server: string;
  caData?: string | undefined;
  /** Absolute once loaded from a file (relative paths resolve against the file's directory, as kubectl does). */
  caFile?: string | undefined;
  skipTLSVerify: boolean;
  tlsServerName?: string | undefined;
  proxyUrl?: string | undefined;
}

/** A credential plugin entry, passed on to client-node as it is. */
export interface AuthProvider {
  name: string;
  config: Record<string, string>;
}

export interface User {
  name: string;
  token?: string | undefined;
  certData?: string | undefined;
  certFile?: string | undefined;
  keyData?: string | undefined;
  keyFile?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  exec?: unknown;
  authProvider?: AuthProvider | undefined;
  /** `as`: the user every request impersonates. */
  impersonateUser?: string | undefined;
}

export interface Context {
  name: string;
  cluster: string;
  user: string;
  namespace?: string | undefined;
}

/** Where the in-cluster ServiceAccount files live (a parameter for tests). */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * A kubeconfig: clusters, users, contexts and the current context, read from
 * YAML (`loadFromString`, `loadFromFile`), from the usual places
 * (`loadFromDefault`), from the Pod's ServiceAccount (`loadFromCluster`) or
 * given as data (`loadFromOptions`). Its getters are the ones the transport
 * and the CLI use; client-node's KubeConfig has the same ones, so code that
 * takes a {@link KubeConfigSource} accepts either.
 *
 * Throws `Error` with a message naming the entry (`clusters[1].cluster.server
 * is missing`) for an invalid file; callers wrap it in KubeConfigError.
 */
export class KubeConfig {
  clusters: Cluster[] = [];
  users: User[] = [];
  contexts: Context[] = [];
  currentContext = "";

  loadFromString(text: string): void {
    const doc: unknown = parse(text);
    if (doc !== null && doc !== undefined && (typeof doc !== "object" || Array.isArray(doc))) throw new Error("the kubeconfig is not a YAML mapping");
    const obj = (doc ?? {}) as Record<string, unknown>;
    this.clusters = entries(obj.clusters, "clusters").map(readCluster);
    this.users = entries(obj.users, "users").map(readUser);
    this.contexts = entries(obj.contexts, "contexts").map(readContext);
    this.currentContext = typeof obj["current-context"] === "string" ? obj["current-context"] : "";
  }

  /** Reads `path`; relative certificate paths in it resolve against its directory. */
  loadFromFile(path: string): void {
    this.loadFromString(readFileSync(path, "utf8"));
    const dir = dirname(path);
    const absolute = (p: string | undefined) => (p && !isAbsolute(p) ? join(dir, p) : p);
    for (const c of this.clusters) c.caFile = absolute(c.caFile);
    for (const u of this.users) {
      u.certFile = absolute(u.certFile);
      u.keyFile = absolute(u.keyFile);
    }
  }

  /**
   * KUBECONFIG (a list of files, merged as kubectl merges them: the first
   * file to define a name or the current context wins), else
   * ~/.kube/config, else the in-cluster ServiceAccount — kubectl's order,
   * for the CLI. With `order: "controller"`, the in-cluster ServiceAccount
   * comes before ~/.kube/config (controller-runtime's GetConfig order, which
   * the Flux controllers follow). Without any of them,
   * http://localhost:8080 (client-go's last resort).
   */
  loadFromDefault(env: NodeJS.ProcessEnv = process.env, serviceAccountDir = SERVICE_ACCOUNT_DIR, order: "kubectl" | "controller" = "kubectl"): void {
    const files = (env.KUBECONFIG ?? "").split(delimiter).filter(Boolean);
    if (files.length > 0) {
      this.loadFromFile(files[0]!);
      for (const file of files.slice(1)) {
        const next = new KubeConfig();
        next.loadFromFile(file);
        this.#mergeMissing(next);
      }
      return;
    }
    const inCluster = Boolean(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) && existsSync(join(serviceAccountDir, "token"));
    if (order === "controller" && inCluster) {
      this.loadFromCluster(env, serviceAccountDir);
      return;
    }
    const home = env.HOME || homedir();
    const config = home ? join(home, ".kube", "config") : "";
    if (config && existsSync(config)) {
      this.loadFromFile(config);
      return;
    }
    if (inCluster) {
      this.loadFromCluster(env, serviceAccountDir);
      return;
    }
    this.loadFromOptions({
      clusters: [{ name: "cluster", server: "http://localhost:8080", skipTLSVerify: false }],
      users: [{ name: "user" }],
      contexts: [{ name: "loaded-context", cluster: "cluster", user: "user" }],
      currentContext: "loaded-context",
    });
  }

  /**
   * The Pod's own identity: KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount's
   * CA, its token file (re-read as the kubelet rotates it; see
   * src/kube/credentials.ts) and namespace.
   */
  loadFromCluster(env: NodeJS.ProcessEnv = process.env, serviceAccountDir = SERVICE_ACCOUNT_DIR): void {
    const host = env.KUBERNETES_SERVICE_HOST ?? "";
    const port = env.KUBERNETES_SERVICE_PORT ?? "";
    const scheme = port === "80" || port === "8080" || port === "8001" ? "http" : "https";
    const namespaceFile = join(serviceAccountDir, "namespace");
    const namespace = existsSync(namespaceFile) ? readFileSync(namespaceFile, "utf8") : undefined;
    this.loadFromOptions({
      clusters: [{ name: "inCluster", server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`, caFile: join(serviceAccountDir, "ca.crt"), skipTLSVerify: false }],
      users: [{ name: "inClusterUser", authProvider: { name: "tokenFile", config: { tokenFile: join(serviceAccountDir, "token") } } }],
      contexts: [{ name: "inClusterContext", cluster: "inCluster", user: "inClusterUser", namespace }],
      currentContext: "inClusterContext",
    });
  }

  loadFromOptions(options: { clusters: Cluster[]; users: User[]; contexts: Context[]; currentContext: string }): void {
    this.clusters = options.clusters;
    this.users = options.users;
    this.contexts = options.contexts;
    this.currentContext = options.currentContext;
  }

  getCurrentContext(): string {
    return this.currentContext;
  }

  setCurrentContext(name: string): void {
    if (!this.getContextObject(name)) throw new Error(`no context named "${name}"`);
    this.currentContext = name;
  }

  getContexts(): Context[] {
    return this.contexts;
  }

  getClusters(): Cluster[] {
    return this.clusters;
  }

  getUsers(): User[] {
    return this.users;
  }

  getContextObject(name: string): Context | null {
    return this.contexts.find((c) => c.name === name) ?? null;
  }

  getCluster(name: string): Cluster | null {
    return this.clusters.find((c) => c.name === name) ?? null;
  }

  getUser(name: string): User | null {
    return this.users.find((u) => u.name === name) ?? null;
  }

  getCurrentCluster(): Cluster | null {
    const context = this.getContextObject(this.currentContext);
    return context ? this.getCluster(context.cluster) : null;
  }

  getCurrentUser(): User | null {
    const context = this.getContextObject(this.currentContext);
    return context ? this.getUser(context.user) : null;
  }

  #mergeMissing(other: KubeConfig): void {
    if (!this.currentContext) this.currentContext = other.currentContext;
    const add = <T extends { name: string }>(mine: T[], theirs: T[]) => {
      for (const entry of theirs) if (!mine.some((m) => m.name === entry.name)) mine.push(entry);
    };
    add(this.clusters, other.clusters);
    add(this.users, other.users);
    add(this.contexts, other.contexts);
  }
}

/** What the transport reads of a kubeconfig: ours, or client-node's KubeConfig (tests build those). */
export interface KubeConfigSource {
  getCurrentCluster(): Cluster | null;
  getCurrentUser(): User | null;
}

type Entry = { name: string; body: Record<string, unknown>; at: string };

function entries(value: unknown, list: string): Entry[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new Error(`${list} is not a list`);
  return value.map((raw, i) => {
    const at = `${list}[${i}]`;
    if (!raw || typeof raw !== "object") throw new Error(`${at} is not a mapping`);
    const item = raw as Record<string, unknown>;
    if (typeof item.name !== "string" || item.name === "") throw new Error(`${at}.name is missing`);
    const key = list.slice(0, -1); // cluster, user, context
    const body = item[key];
    if (body !== undefined && body !== null && typeof body !== "object") throw new Error(`${at}.${key} is not a mapping`);
    return { name: item.name, body: (body ?? {}) as Record<string, unknown>, at: `${at}.${key}` };
  });
}

function text(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  return typeof v === "string" && v !== "" ? v : undefined;
}

function readCluster({ name, body, at }: Entry): Cluster {
  const server = text(body, "server");
  if (!server) throw new Error(`${at}.server is missing`);
  return {
    name,
    server: server.replace(/\/$/, ""),
    caData: text(body, "certificate-authority-data"),
    caFile: text(body, "certificate-authority"),
    skipTLSVerify: body["insecure-skip-tls-verify"] === true,
    tlsServerName: text(body, "tls-server-name"),
    proxyUrl: text(body, "proxy-url"),
  };
}

function readUser({ name, body }: Entry): User {
  const token = text(body, "token");
  const tokenFile = text(body, "tokenFile") ?? text(body, "token-file");
  const provider = body["auth-provider"];
  return {
    name,
    token,
    certData: text(body, "client-certificate-data"),
    certFile: text(body, "client-certificate"),
    keyData: text(body, "client-key-data"),
    keyFile: text(body, "client-key"),
    username: text(body, "username"),
    password: typeof body.password === "string" ? body.password : undefined,
    exec: body.exec ?? undefined,
    // A token file is re-read as it rotates (client-go's cached file token source), like the in-cluster one.
    authProvider:
      provider && typeof provider === "object"
        ? (provider as AuthProvider)
        : !token && tokenFile
          ? { name: "tokenFile", config: { tokenFile } }
          : undefined,
    impersonateUser: text(body, "as"),
  };
}

function readContext({ name, body, at }: Entry): Context {
  const cluster = text(body, "cluster");
  const user = text(body, "user");
  if (!cluster) throw new Error(`${at}.cluster is missing`);
  return { name, cluster, user: user ?? "", namespace: text(body, "namespace") };
}

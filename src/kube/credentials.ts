import { readFile } from "node:fs/promises";
import type https from "node:https";
import type { Cluster, User } from "./kubeconfig-file.js";

/** The `authorization` header (or none) for the next request. */
export type HeaderSource = () => Promise<Record<string, string>>;

/** How long a token file's content is used before it is read again (client-go re-reads it every minute). */
const TOKEN_FILE_TTL_MS = 60_000;

/**
 * The credential of `user` as request headers:
 * - a static token or username/password becomes a header once;
 * - a token file (the in-cluster ServiceAccount's, or `tokenFile`) is read
 *   again once a minute, as the kubelet rotates it;
 * - exec plugins and other auth-providers (oidc, gcp, azure) run through
 *   @kubernetes/client-node's authenticators, imported on the first request
 *   that needs them (they cache the credential and refresh it on expiry).
 *
 * Throws (from the returned function) when a token file cannot be read or a
 * plugin fails; the transport reports it as the request's error.
 */
export function authHeaderSource(cluster: Cluster, user: User | null, now: () => number = Date.now): HeaderSource {
  if (!user) return async () => ({});
  const tokenFile = user.authProvider?.name === "tokenFile" ? user.authProvider.config.tokenFile : undefined;
  if (tokenFile) return tokenFileSource(tokenFile, now);
  if (!user.exec && !user.authProvider) {
    const headers: Record<string, string> = {};
    if (user.token) headers.authorization = `Bearer ${user.token}`;
    else if (user.username) headers.authorization = `Basic ${Buffer.from(`${user.username}:${user.password ?? ""}`).toString("base64")}`;
    return async () => headers;
  }
  return pluginSource(cluster, user);
}

function tokenFileSource(path: string, now: () => number): HeaderSource {
  let cached: { token: string; readAt: number } | undefined;
  return async (): Promise<Record<string, string>> => {
    if (!cached || now() - cached.readAt >= TOKEN_FILE_TTL_MS) {
      cached = { token: (await readFile(path, "utf8")).trim(), readAt: now() };
    }
    return cached.token ? { authorization: `Bearer ${cached.token}` } : {};
  };
}

function pluginSource(cluster: Cluster, user: User): HeaderSource {
  let apply: Promise<(opts: https.RequestOptions) => Promise<void>> | undefined;
  const load = async () => {
    const { KubeConfig } = await import("@kubernetes/client-node");
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [cluster as never],
      users: [user as never],
      contexts: [{ name: "current", cluster: cluster.name, user: user.name }],
      currentContext: "current",
    });
    // client-node 1.3's applyAuthorizationHeader runs only the credential part;
    // the public applyToHTTPSOptions would also re-read CA/cert files and build
    // a new agent on every call.
    const applyAuth = (kc as unknown as { applyAuthorizationHeader?: (o: https.RequestOptions) => Promise<void> }).applyAuthorizationHeader;
    return (opts: https.RequestOptions) => (typeof applyAuth === "function" ? applyAuth.call(kc, opts) : kc.applyToHTTPSOptions(opts));
  };
  return async () => {
    apply ??= load();
    const opts: https.RequestOptions = { headers: {} };
    await (await apply)(opts);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      if (k.toLowerCase() === "authorization" && typeof v === "string") out.authorization = v;
    }
    return out;
  };
}

/**
 * HashiCorp Vault / OpenBao transit recipients (`sops.hc_vault[]`:
 * {vault_address, engine_path, key_name, enc}), decrypted the way sops does
 * (getsops/sops hcvault/keysource.go): `enc` is the transit ciphertext
 * (`vault:v1:…`), sent as `{"ciphertext": enc}` to
 * `POST {vault_address}/v1/{engine_path}/decrypt/{key_name}`; the answer's
 * `data.plaintext` is the standard base64 of the data key.
 *
 * Client: plain `fetch`. HashiCorp publishes no JavaScript client for Vault
 * (its official clients are Go, and community ones elsewhere; the npm
 * packages are unofficial), and OpenBao none at all; the transit decrypt call
 * is one documented REST request, which OpenBao serves unchanged.
 *
 * Credentials: the token of VAULT_TOKEN, else of the token file
 * `~/.vault-token` (what `vault login` and a Vault Agent sink write; read on
 * every call, so a renewed token is picked up); VAULT_NAMESPACE is sent as
 * X-Vault-Namespace. Without a token the provider is not configured
 * (undefined). TLS: the system CAs plus NODE_EXTRA_CA_CERTS.
 *
 * The address comes from a tenant's file, and the token is the
 * controller's. It is therefore sent only to an address that
 * SOPS_HC_VAULT_ALLOWLIST allows (sops's variable: comma-separated URL
 * prefixes, or `all`), or, when that is unset, to the address of VAULT_ADDR;
 * anything else is refused with a DecryptionError. (sops itself defaults to
 * `all`: right for a workstation, not for a shared controller.) Redirects
 * are followed only to allowed addresses.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { DecryptionError } from "../../errors.js";
import type { KmsProvider, RecipientEntry } from "../types.js";
import { checkDataKey, decodeBase64, describeCause, isAbort, requiredField } from "./common.js";

const PROVIDER = "HashiCorp Vault transit";
const TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 3;
const MAX_BODY_BYTES = 64 * 1024;

export interface VaultTransitProviderOptions {
  /** The environment to read VAULT_TOKEN, VAULT_ADDR, VAULT_NAMESPACE and SOPS_HC_VAULT_ALLOWLIST from (default: process.env, read per call). */
  env?: NodeJS.ProcessEnv;
  /** Where `.vault-token` is looked for (default: the user's home directory). */
  homeDir?: string;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
}

/** The allowlist as URL prefixes ending in "/", or "all". */
export function vaultAllowlist(env: NodeJS.ProcessEnv): "all" | string[] {
  const configured = env.SOPS_HC_VAULT_ALLOWLIST?.trim();
  const withSlash = (uri: string): string => (uri.endsWith("/") ? uri : `${uri}/`);
  if (configured) {
    if (configured === "all") return "all";
    if (configured === "none") return [];
    return configured
      .split(",")
      .map((uri) => uri.trim())
      .filter((uri) => uri !== "")
      .map(withSlash);
  }
  const addr = env.VAULT_ADDR?.trim();
  return addr ? [withSlash(addr)] : [];
}

function allows(allowlist: "all" | string[], address: string): boolean {
  if (allowlist === "all") return true;
  const withSlash = address.endsWith("/") ? address : `${address}/`;
  return allowlist.some((prefix) => withSlash.startsWith(prefix));
}

/** The base URL (origin and path, no trailing slash) of a Vault address, or undefined when it is not one. */
function baseUrl(address: string): string | undefined {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    return undefined;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
  if (url.username || url.password || url.search || url.hash) return undefined;
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** URL path segments of a mount path (`transit`, `sops/transit`), or undefined when it is not one. */
function pathSegments(path: string): string[] | undefined {
  const segments = path.replace(/^\/+|\/+$/g, "").split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) return undefined;
  return segments.map((s) => encodeURIComponent(s));
}

async function readToken(env: NodeJS.ProcessEnv, home: string): Promise<string | undefined> {
  const fromEnv = env.VAULT_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  try {
    const fromFile = (await readFile(join(home, ".vault-token"), "utf8")).trim();
    return fromFile || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new DecryptionError(`${PROVIDER}: cannot read the Vault token file: ${describeCause(err)}`, { cause: err });
  }
}

/** Reads at most MAX_BODY_BYTES of a response body as text. */
async function boundedText(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw new Error(`the answer is larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Vault's `{"errors": [...]}`, joined and bounded; the status text when there is none. */
function vaultErrors(status: number, text: string): string {
  try {
    const parsed = JSON.parse(text) as { errors?: unknown };
    if (Array.isArray(parsed.errors) && parsed.errors.length > 0) {
      return describeCause(parsed.errors.map(String).join("; "));
    }
  } catch {
    // not JSON
  }
  return `HTTP ${status}`;
}

export class VaultTransitProvider implements KmsProvider {
  readonly kind = "hc_vault" as const;

  constructor(private readonly options: VaultTransitProviderOptions = {}) {}

  async decryptDataKey(entry: RecipientEntry, signal?: AbortSignal): Promise<Buffer | undefined> {
    const address = requiredField(entry, "vault_address", PROVIDER);
    const enginePath = requiredField(entry, "engine_path", PROVIDER);
    const keyName = requiredField(entry, "key_name", PROVIDER);
    const enc = requiredField(entry, "enc", PROVIDER);
    const keyId = `${address.replace(/\/+$/, "")}/v1/${enginePath.replace(/^\/+|\/+$/g, "")}/keys/${keyName}`;
    const base = baseUrl(address);
    const engine = pathSegments(enginePath);
    if (!base || !engine || keyName.includes("/") || keyName === "." || keyName === "..") {
      throw new DecryptionError(`${PROVIDER}: "${keyId}" is not a transit key address`);
    }

    const env = this.options.env ?? process.env;
    const token = await readToken(env, this.options.homeDir ?? homedir());
    if (!token) return undefined;
    const allowlist = vaultAllowlist(env);
    if (!allows(allowlist, base)) {
      throw new DecryptionError(
        `${PROVIDER} key ${keyId}: the controller sends its Vault token only to VAULT_ADDR or an address SOPS_HC_VAULT_ALLOWLIST allows, and ${base} is neither`,
      );
    }

    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? TIMEOUT_MS);
    const requestSignal = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      "X-Vault-Request": "true",
      "X-Vault-Token": token,
    };
    const namespace = env.VAULT_NAMESPACE?.trim();
    if (namespace) headers["X-Vault-Namespace"] = namespace;
    const body = JSON.stringify({ ciphertext: enc });

    let url = `${base}/v1/${engine.join("/")}/decrypt/${encodeURIComponent(keyName)}`;
    try {
      for (let hop = 0; ; hop++) {
        const response = await fetch(url, { method: "POST", headers, body, redirect: "manual", signal: requestSignal });
        if ((response.status === 307 || response.status === 308) && hop < MAX_REDIRECTS) {
          const location = response.headers.get("location");
          await response.body?.cancel();
          const next = location ? new URL(location, url) : undefined;
          if (!next || !allows(allowlist, next.origin)) {
            throw new DecryptionError(
              `${PROVIDER} key ${keyId}: Vault redirected to ${next?.origin ?? "nowhere"}, which is not an allowed Vault address`,
            );
          }
          url = next.href;
          continue;
        }
        const text = await boundedText(response);
        if (!response.ok) {
          throw new DecryptionError(
            `${PROVIDER} key ${keyId}: Vault refused to decrypt the data key (HTTP ${response.status}): ${vaultErrors(response.status, text)}`,
          );
        }
        let plaintext: unknown;
        try {
          plaintext = (JSON.parse(text) as { data?: { plaintext?: unknown } }).data?.plaintext;
        } catch {
          plaintext = undefined;
        }
        const key = typeof plaintext === "string" ? decodeBase64(plaintext) : undefined;
        if (!key) throw new DecryptionError(`${PROVIDER} key ${keyId}: Vault's answer carries no base64 data.plaintext`);
        return checkDataKey(key, PROVIDER, keyId);
      }
    } catch (err) {
      if (err instanceof DecryptionError) throw err;
      if (signal?.aborted) throw signal.reason;
      if (isAbort(err, undefined) && timeout.aborted) {
        throw new DecryptionError(`${PROVIDER} key ${keyId}: Vault did not answer within ${(this.options.timeoutMs ?? TIMEOUT_MS) / 1000}s`, {
          cause: err,
        });
      }
      const cause = err instanceof Error && err.cause !== undefined ? describeCause(err.cause) : describeCause(err);
      throw new DecryptionError(`${PROVIDER} key ${keyId}: could not reach Vault: ${cause}`, { cause: err });
    }
  }
}

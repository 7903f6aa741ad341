/**
 * The `http` action: one request (plus at most {@link MAX_REDIRECTS}
 * redirects, each checked before it is followed) whose final status must be
 * in `expectedStatus` (any 2xx by default).
 *
 * Destinations go through host-policy.ts: the URL's host must match an
 * `--allowed-action-hosts` entry, guarded ranges (loopback, link-local,
 * unspecified, cloud metadata) need an explicit entry, a name is resolved
 * here once and every address checked, and the socket connects to the
 * checked address (a custom `lookup` hands it to node:http/https, while the
 * Host header and TLS server name stay the URL's name). No agent pools
 * sockets across requests.
 *
 * Secret values (`headersFrom`, `bodyFrom`, read as the tenant) are never
 * logged or put in messages; response snippets in messages have them
 * redacted, and secret headers are not sent to another origin on a redirect.
 */
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import type { Action, HttpAction, KubeObject, SecretKeyRef } from "../api/types.js";
import { errorMessage, StageFailedError } from "../errors.js";
import { actionLabel, clip, request, stageSetNamespace } from "./common.js";
import {
  checkDestination,
  describeUrl,
  HostRefusedError,
  parseAllowedHosts,
  systemResolver,
  type HostPattern,
  type HostResolver,
  type ResolvedAddress,
} from "./host-policy.js";
import type { ActionEnv, ActionExecutor, ActionResult } from "./types.js";

/** Redirects followed at most (each hop checked like the first URL). */
export const MAX_REDIRECTS = 5;
/** Response bytes read at most; the rest is discarded. */
export const MAX_RESPONSE_BYTES = 64 * 1024;
/** Connecting (TCP and TLS) may take at most this long, in ms (less when the action's budget is smaller). */
export const CONNECT_TIMEOUT_MS = 10_000;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Headers never sent to another origin after a redirect (besides those read from Secrets). */
const CREDENTIAL_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);

export interface HttpExecutorOptions {
  /** How host names are resolved (tests inject one); default the system resolver. */
  resolver?: HostResolver;
}

/**
 * An `http` executor. The returned executor rejects with a StageFailedError
 * naming the URL and the cause (refused host, network error, timeout,
 * unexpected status with a redacted snippet of the body), or an RBACDenied
 * error when the tenant may not read a referenced Secret.
 */
export function createHttpExecutor(options: HttpExecutorOptions = {}): ActionExecutor {
  const resolver = options.resolver ?? systemResolver;
  return (action, env) => runHttp(action, env, resolver);
}

/** The `http` executor with the system resolver. */
export const httpExecutor: ActionExecutor = createHttpExecutor();

interface Outgoing {
  method: string;
  headers: Record<string, string>;
  /** Header names whose values came from Secrets. */
  secretHeaders: Set<string>;
  body: Buffer | undefined;
  /** Every secret value, for redaction. */
  secrets: string[];
}

interface Answer {
  status: number;
  location: string | undefined;
  body: Buffer;
}

async function runHttp(action: Action, env: ActionEnv, resolver: HostResolver): Promise<ActionResult> {
  const spec = action.http as HttpAction;
  const what = actionLabel("http", action);
  let url: URL;
  try {
    url = new URL(spec.url);
  } catch {
    throw new StageFailedError(`${what}: url ${JSON.stringify(spec.url)} is not a URL`, { terminal: true });
  }
  let patterns: HostPattern[];
  try {
    patterns = parseAllowedHosts(env.allowedHosts);
  } catch (err) {
    throw new StageFailedError(`${what}: ${errorMessage(err)}`, { terminal: true });
  }
  const expected = spec.expectedStatus?.length ? spec.expectedStatus : undefined;
  const accepts = (status: number) => (expected ? expected.includes(status) : status >= 200 && status <= 299);
  const outgoing = await prepareRequest(what, spec, env);

  const deadline = env.clock.monotonic() + env.timeoutMs;
  const firstUrl = describeUrl(url);
  for (let hop = 0; ; hop++) {
    let target: ResolvedAddress;
    try {
      target = await checkDestination(url, patterns, resolver);
    } catch (err) {
      const where = hop === 0 ? `${outgoing.method} ${describeUrl(url)}` : `redirect from ${firstUrl} to ${describeUrl(url)}`;
      if (err instanceof HostRefusedError) throw new StageFailedError(`${what}: ${where} refused: ${err.message}`);
      throw new StageFailedError(`${what}: ${where}: cannot resolve ${url.hostname}: ${errorMessage(err)}`, { cause: err });
    }
    env.signal.throwIfAborted();
    env.log.debug({ action: action.name, url: describeUrl(url), address: target.address, hop }, "http action request");
    let answer: Answer;
    try {
      answer = await send(url, target, outgoing, env, deadline);
    } catch (err) {
      if (env.signal.aborted) throw env.signal.reason;
      throw new StageFailedError(`${what}: ${outgoing.method} ${describeUrl(url)}: ${redact(errorMessage(err), outgoing.secrets)}`, { cause: err });
    }
    if (REDIRECT_STATUSES.has(answer.status) && !accepts(answer.status) && answer.location !== undefined) {
      if (hop >= MAX_REDIRECTS) {
        throw new StageFailedError(`${what}: ${firstUrl}: more than ${MAX_REDIRECTS} redirects (last to ${describeLocation(answer.location, url)})`);
      }
      let next: URL;
      try {
        next = new URL(answer.location, url);
      } catch {
        throw new StageFailedError(`${what}: ${describeUrl(url)} redirected to an invalid URL`);
      }
      followRedirect(outgoing, answer.status, url, next);
      url = next;
      continue;
    }
    if (!accepts(answer.status)) {
      const snippet = clip(redact(answer.body.toString("utf8"), outgoing.secrets), 200);
      const wanted = expected ? `expected ${expected.join(", ")}` : "expected a 2xx status";
      throw new StageFailedError(
        `${what}: ${outgoing.method} ${describeUrl(url)} answered ${answer.status} (${wanted})${snippet ? `: ${snippet}` : ""}`,
      );
    }
    return { message: `${outgoing.method} ${describeUrl(url)} answered ${answer.status}` };
  }
}

function describeLocation(location: string, base: URL): string {
  try {
    return describeUrl(new URL(location, base));
  } catch {
    return "an invalid URL";
  }
}

/** Reads the Secrets the request needs (as the tenant) and assembles method, headers and body. */
async function prepareRequest(what: string, spec: HttpAction, env: ActionEnv): Promise<Outgoing> {
  const outgoing: Outgoing = {
    method: (spec.method ?? "POST").toUpperCase(),
    headers: {},
    secretHeaders: new Set(),
    body: undefined,
    secrets: [],
  };
  for (const [name, value] of Object.entries(spec.headers ?? {})) {
    checkHeader(what, name, value, `headers[${JSON.stringify(name)}]`);
    outgoing.headers[name.toLowerCase()] = value;
  }
  const secrets = new Map<string, KubeObject | undefined>();
  const readKey = async (ref: SecretKeyRef, field: string): Promise<string> => {
    const namespace = stageSetNamespace(env);
    const object = `Secret ${namespace}/${ref.name}`;
    if (!secrets.has(ref.name)) {
      secrets.set(ref.name, await request(what, "get", object, () => env.tenant.get({ apiVersion: "v1", kind: "Secret", namespace, name: ref.name })));
    }
    const secret = secrets.get(ref.name);
    if (!secret) throw new StageFailedError(`${what}: ${field}: ${object} does not exist`);
    const key = ref.key ?? "";
    const encoded = (secret.data as Record<string, string> | undefined)?.[key];
    if (encoded === undefined) throw new StageFailedError(`${what}: ${field}: ${object} has no key ${JSON.stringify(key)}`);
    const value = Buffer.from(encoded, "base64").toString("utf8");
    if (value !== "") outgoing.secrets.push(value);
    return value;
  };
  for (const [i, ref] of (spec.headersFrom ?? []).entries()) {
    const field = `headersFrom[${i}]`;
    const value = (await readKey(ref, field)).trim();
    checkHeader(what, ref.key ?? "", value, `${field} (Secret ${ref.name} key ${JSON.stringify(ref.key)})`);
    const name = (ref.key ?? "").toLowerCase();
    outgoing.headers[name] = value;
    outgoing.secretHeaders.add(name);
  }
  if (spec.bodyFrom) outgoing.body = Buffer.from(await readKey(spec.bodyFrom, "bodyFrom"), "utf8");
  return outgoing;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Refuses a header name that is no HTTP token or a value with control characters; the message never shows the value. */
function checkHeader(what: string, name: string, value: string, field: string): void {
  if (!TOKEN.test(name)) throw new StageFailedError(`${what}: ${field}: ${JSON.stringify(name)} is not a valid header name`, { terminal: true });
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) {
    throw new StageFailedError(`${what}: ${field}: the header value contains control characters (line breaks?)`, { terminal: true });
  }
}

/** Adjusts the request for the next hop as browsers do: 303 (and 301/302 after POST) become GET without a body; credentials stay with their origin. */
function followRedirect(outgoing: Outgoing, status: number, from: URL, to: URL): void {
  if (status === 303 ? outgoing.method !== "HEAD" : (status === 301 || status === 302) && outgoing.method === "POST") {
    outgoing.method = "GET";
    outgoing.body = undefined;
    delete outgoing.headers["content-type"];
    delete outgoing.headers["content-length"];
  }
  if (from.origin !== to.origin) {
    for (const name of Object.keys(outgoing.headers)) {
      if (outgoing.secretHeaders.has(name) || CREDENTIAL_HEADERS.has(name)) delete outgoing.headers[name];
    }
  }
}

/** One request to `target` (the checked address) for `url`; reads at most MAX_RESPONSE_BYTES of the answer. */
function send(url: URL, target: ResolvedAddress, outgoing: Outgoing, env: ActionEnv, deadline: number): Promise<Answer> {
  const remaining = deadline - env.clock.monotonic();
  if (remaining <= 0) return Promise.reject(new Error(`no time left of the action's ${env.timeoutMs}ms timeout`));
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (err: null, addresses: { address: string; family: number }[]) => void)(null, [target]);
    } else {
      callback(null, target.address, target.family);
    }
  };
  const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const headers: Record<string, string> = { ...outgoing.headers };
  if (outgoing.body) headers["content-length"] = String(outgoing.body.length);
  const requestOptions: https.RequestOptions = {
    protocol: url.protocol,
    host: hostname,
    port: url.port || undefined,
    path: `${url.pathname}${url.search}`,
    method: outgoing.method,
    headers,
    lookup: pinned,
    agent: false,
    ...(url.username ? { auth: `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` } : {}),
  };
  // TLS: SNI and certificate check against the URL's name (never an IP, which SNI does not carry).
  if (url.protocol === "https:" && isIP(hostname) === 0) requestOptions.servername = hostname;

  return new Promise<Answer>((resolve, reject) => {
    let settled = false;
    const timers: { cancel(): void }[] = [];
    const finish = (err: Error | undefined, answer?: Answer) => {
      if (settled) return;
      settled = true;
      for (const t of timers) t.cancel();
      env.signal.removeEventListener("abort", onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else {
        resolve(answer!);
      }
    };
    const onAbort = () => finish(env.signal.reason instanceof Error ? env.signal.reason : new Error("aborted"));
    const req = (url.protocol === "https:" ? https : http).request(requestOptions);
    timers.push(env.clock.setTimer(remaining, () => finish(new Error(`no answer within the action's timeout (${env.timeoutMs}ms)`))));
    req.once("socket", (socket) => {
      if (!socket.connecting) return;
      const connectTimer = env.clock.setTimer(Math.min(CONNECT_TIMEOUT_MS, remaining), () =>
        finish(new Error(`connecting to ${target.address} timed out`)),
      );
      timers.push(connectTimer);
      socket.once("connect", () => connectTimer.cancel());
    });
    req.once("error", (err) => finish(err));
    req.once("response", (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () =>
        finish(undefined, {
          status: res.statusCode ?? 0,
          location: typeof res.headers.location === "string" ? res.headers.location : undefined,
          body: Buffer.concat(chunks),
        });
      res.on("data", (chunk: Buffer) => {
        if (size >= MAX_RESPONSE_BYTES) return;
        const part = chunk.subarray(0, MAX_RESPONSE_BYTES - size);
        chunks.push(part);
        size += part.length;
        if (size >= MAX_RESPONSE_BYTES) {
          done();
          res.destroy();
        }
      });
      res.once("end", done);
      res.once("error", (err) => finish(err));
      res.once("close", done);
    });
    if (env.signal.aborted) {
      onAbort();
      return;
    }
    env.signal.addEventListener("abort", onAbort, { once: true });
    req.end(outgoing.body);
  });
}

/** Replaces every secret value in `text` with `[redacted]`. */
function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret !== "") out = out.split(secret).join("[redacted]");
  }
  return out;
}

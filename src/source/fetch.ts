import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { get as httpGet, type IncomingMessage } from "node:http";
import { get as httpsGet } from "node:https";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { ArtifactError, errorMessage } from "../errors.js";
import { displayUrl, type Artifact } from "./artifact.js";
import { createDigester, parseDigest, shortDigest, type Digester, type ParsedDigest } from "./digest.js";

/**
 * Downloads an artifact tarball to a temporary file, hashing while it streams
 * (a 100+ MB artifact never sits in memory), then verifies the digest.
 *
 * Defaults: 2 minutes per attempt for the whole download, 3 retries (4
 * attempts) on network errors, timeouts and HTTP 408/429/5xx, exponential
 * backoff from 500 ms capped at 10 s (a Retry-After header is honoured up to
 * that cap); never on other 4xx. At most 256 MiB are downloaded: five times
 * source-controller's default `--artifact-max-size` (50 MiB).
 */
export const DEFAULT_FETCH_TIMEOUT_MS = 120_000;
export const DEFAULT_FETCH_RETRIES = 3;
export const DEFAULT_MAX_ARTIFACT_BYTES = 256 * 1024 * 1024;
export const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 10_000 } as const;

export interface FetchOptions {
  /** Per attempt, covering connect and the whole body. */
  timeoutMs?: number;
  /** Attempts after the first. */
  retries?: number;
  maxBytes?: number;
  /** Cancels the fetch; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Parent of the temporary directory holding the download; default os.tmpdir(). */
  parentDir?: string;
  backoff?: { initialMs: number; maxMs: number };
}

export interface FetchedArtifact {
  /** The verified tarball. */
  path: string;
  bytes: number;
  /** Deletes the download. */
  remove(): Promise<void>;
}

/** Why one attempt failed, and whether another attempt may succeed. */
class AttemptError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
    readonly terminal = false,
  ) {
    super(message);
  }
}

/**
 * Downloads and verifies `artifact`. Rejects with an ArtifactError naming the
 * URL (without credentials or query), the revision and the cause; it is
 * terminal where retrying the same artifact cannot help (unsupported digest,
 * non-HTTP URL, size cap). Rejects with the signal's reason when aborted.
 */
export async function fetchArtifact(artifact: Artifact, options: FetchOptions = {}): Promise<FetchedArtifact> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  const retries = options.retries ?? DEFAULT_FETCH_RETRIES;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_ARTIFACT_BYTES;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const where = `artifact ${displayUrl(artifact.url)} (revision ${artifact.revision})`;

  const expected = parseDigest(artifact.digest);
  const parsed = URL.canParse(artifact.url) ? new URL(artifact.url) : undefined;
  if (parsed?.protocol !== "http:" && parsed?.protocol !== "https:") {
    throw new ArtifactError(`${where}: only http and https URLs can be fetched`, { terminal: true });
  }
  if (parsed.username || parsed.password) {
    throw new ArtifactError(`${where}: URLs with embedded credentials are not supported`, { terminal: true });
  }
  if (artifact.size !== undefined && artifact.size > maxBytes) {
    throw new ArtifactError(`${where}: its reported size ${artifact.size} bytes exceeds the limit of ${maxBytes} bytes`, {
      terminal: true,
    });
  }

  const dir = await mkdtemp(join(options.parentDir ?? tmpdir(), "artifact-"));
  const path = join(dir, "artifact");
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const bytes = await downloadWithRetries(artifact.url, path, expected, {
      timeoutMs,
      retries,
      maxBytes,
      backoff,
      signal: options.signal,
      where,
    });
    return { path, bytes, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}

interface DownloadSettings {
  timeoutMs: number;
  retries: number;
  maxBytes: number;
  backoff: { initialMs: number; maxMs: number };
  signal: AbortSignal | undefined;
  where: string;
}

async function downloadWithRetries(
  url: string,
  path: string,
  expected: ParsedDigest,
  settings: DownloadSettings,
): Promise<number> {
  const attempts = settings.retries + 1;
  for (let attempt = 1; ; attempt++) {
    settings.signal?.throwIfAborted();
    let failure: AttemptError;
    try {
      const { bytes, digester } = await downloadOnce(url, path, expected, settings);
      const actual = digester.hex();
      if (actual !== expected.hex) {
        throw new ArtifactError(
          `${settings.where}: digest mismatch: expected ${shortDigest(expected.algorithm, expected.hex)}, ` +
            `got ${shortDigest(expected.algorithm, actual)} over ${bytes} bytes`,
        );
      }
      return bytes;
    } catch (err) {
      if (err instanceof ArtifactError) throw err;
      settings.signal?.throwIfAborted();
      failure = err instanceof AttemptError ? err : new AttemptError(describeNetworkError(err, url), true);
    }
    const tries = `${attempt} attempt${attempt > 1 ? "s" : ""}`;
    if (!failure.retryable || attempt >= attempts) {
      throw new ArtifactError(`${settings.where}: ${failure.message} (after ${tries})`, { terminal: failure.terminal });
    }
    const exponential = Math.min(settings.backoff.maxMs, settings.backoff.initialMs * 2 ** (attempt - 1));
    const delay = Math.min(settings.backoff.maxMs, failure.retryAfterMs ?? exponential / 2 + Math.random() * (exponential / 2));
    await sleep(delay, undefined, { signal: settings.signal });
  }
}

async function downloadOnce(
  url: string,
  path: string,
  expected: ParsedDigest,
  settings: DownloadSettings,
): Promise<{ bytes: number; digester: Digester }> {
  const timeout = AbortSignal.timeout(settings.timeoutMs);
  const signal = settings.signal ? AbortSignal.any([settings.signal, timeout]) : timeout;
  try {
    const response = await get(url, signal);
    if (response.statusCode !== 200) {
      response.destroy();
      const status = response.statusCode ?? 0;
      const retryable = status === 408 || status === 429 || status >= 500;
      throw new AttemptError(`HTTP ${status}${response.statusMessage ? ` ${response.statusMessage}` : ""}`, retryable, retryAfterMs(header(response, "retry-after")));
    }
    const declared = Number(header(response, "content-length") ?? NaN);
    if (declared > settings.maxBytes) {
      response.destroy();
      throw new AttemptError(`the server announces ${declared} bytes, more than the limit of ${settings.maxBytes}`, false, undefined, true);
    }
    const meter = new HashingMeter(createDigester(expected.algorithm), settings.maxBytes);
    // An abort (the deadline or the caller) destroys every stream of the pipeline, the response's socket too.
    await pipeline(response, meter, createWriteStream(path), { signal });
    return { bytes: meter.bytes, digester: meter.digester };
  } catch (err) {
    if (err instanceof AttemptError) throw err;
    if (err instanceof SizeLimitError) throw new AttemptError(err.message, false, undefined, true);
    if (timeout.aborted && !settings.signal?.aborted) throw new AttemptError(`timed out after ${formatMs(settings.timeoutMs)}`, true);
    settings.signal?.throwIfAborted();
    throw err;
  }
}

/** Redirects followed per attempt, as many as Go's http.Client (what source-controller's own fetcher uses) follows. */
const MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * GETs `url` with node:http(s), following redirects to other http(s) URLs;
 * resolves with the final response, its body unread. Rejects with an
 * AttemptError on a redirect without a usable Location or past MAX_REDIRECTS,
 * with the socket error otherwise.
 *
 * Not `fetch`: the first fetch of a process loads and compiles undici, a
 * second HTTP client beside the one the API client already uses. Measured on
 * the two-core machine: 45–60 ms of CPU for a first fetch of a 300 KB body
 * against 10 ms with node:http, and about 100 ms of the controller's first
 * artifact download under load (its CPU profile in B1 of
 * bench/kustomize-controller.ts), all of it on the first stage's critical path.
 * No Accept-Encoding is sent, so the digest is taken over the bytes as served.
 */
async function get(url: string, signal: AbortSignal): Promise<IncomingMessage> {
  let current = new URL(url);
  for (let redirects = 0; ; redirects++) {
    const target = current;
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = target.protocol === "https:" ? httpsGet(target, { signal }, resolve) : httpGet(target, { signal }, resolve);
      req.once("error", reject);
    });
    const location = header(response, "location");
    if (!REDIRECT_STATUSES.has(response.statusCode ?? 0) || location === undefined) return response;
    response.destroy();
    const next = URL.canParse(location, current.href) ? new URL(location, current) : undefined;
    if (next?.protocol !== "http:" && next?.protocol !== "https:") {
      throw new AttemptError(`HTTP ${response.statusCode} redirects to a location that is not an http or https URL`, false, undefined, true);
    }
    if (redirects >= MAX_REDIRECTS) throw new AttemptError(`stopped after ${MAX_REDIRECTS} redirects`, false, undefined, true);
    current = next;
  }
}

function header(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

class SizeLimitError extends Error {}

/** Hashes and counts the bytes passing through; fails past `maxBytes`. */
class HashingMeter extends Transform {
  bytes = 0;

  constructor(
    readonly digester: Digester,
    private readonly maxBytes: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      callback(new SizeLimitError(`the download exceeds the limit of ${this.maxBytes} bytes`));
      return;
    }
    this.digester.update(chunk);
    callback(null, chunk);
  }
}

function retryAfterMs(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function describeNetworkError(err: unknown, url: string): string {
  // A wrapped error (an aborted pipeline, say) puts the interesting part in `cause`.
  const cause = (err as { cause?: unknown })?.cause;
  const source = cause ?? err;
  const code = (source as { code?: unknown })?.code;
  const message = errorMessage(source).replaceAll(url, displayUrl(url));
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

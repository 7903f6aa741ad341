/**
 * The webhook's HTTPS server: one path ({@link ADMISSION_PATH}), POST only,
 * JSON in and out, a bounded body, bounded time per request, and a serving
 * certificate that can be replaced while it runs (`tls.Server#setSecureContext`:
 * connections opened afterwards get the new certificate, open ones keep
 * theirs — what controller-runtime's certwatcher achieves with a
 * GetCertificate callback). Until the first certificate arrives, TLS
 * handshakes fail and {@link AdmissionServer.hasCertificate} is false.
 *
 * Answers:
 * - 200 with an AdmissionReview (allowed or denied, see admission.ts);
 * - 400 for a body that is not JSON or not an `admission.k8s.io/v1` AdmissionReview;
 * - 404 for another path, 405 (with `Allow: POST`) for another method;
 * - 413 for a body over `maxBodyBytes`; 415 for a content type other than JSON;
 * - 408 when a request is not received within `requestTimeoutMs` (Node's own timeout).
 */
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../util/log.js";
import {
  ADMISSION_PATH,
  internalErrorReview,
  MalformedReviewError,
  reviewAdmission,
  uidOf,
  type StageSetValidator,
} from "./admission.js";

/**
 * The body limit: an UPDATE review carries the object and the old object,
 * each up to the API server's 3 MiB request limit (`--max-request-body-bytes`
 * default), plus the review around them.
 */
export const DEFAULT_MAX_BODY_BYTES = 7 * 1024 * 1024;

/**
 * A request must arrive whole within this time. The API server gives a
 * webhook call at most 30 s (`timeoutSeconds` caps at 30, default 10).
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** A PEM certificate chain and its PEM private key. */
export interface ServingCertificate {
  certPem: string;
  keyPem: string;
}

export interface AdmissionServerOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Interface to bind; default every interface (the API server reaches the webhook through a Service). */
  host?: string;
  log: Logger;
  /** Default {@link DEFAULT_MAX_BODY_BYTES}. */
  maxBodyBytes?: number;
  /** Default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  requestTimeoutMs?: number;
  /** Default validateStageSet. */
  validate?: StageSetValidator;
}

export interface AdmissionServer {
  /** The bound port. */
  readonly port: number;
  /**
   * Serves `certificate` to every TLS connection opened from now on. Throws
   * (and keeps the previous certificate) when the key does not match the
   * certificate or either does not parse; the error message carries no key
   * material.
   */
  setCertificate(certificate: ServingCertificate): void;
  /** Whether a certificate has been set: only then can a TLS client connect. */
  hasCertificate(): boolean;
  /** Stops accepting connections and ends open ones. */
  close(): Promise<void>;
}

/**
 * Binds the HTTPS server and resolves once it listens. Rejects with the
 * listen error (EADDRINUSE, EACCES).
 */
export async function startAdmissionServer(options: AdmissionServerOptions): Promise<AdmissionServer> {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const validate = options.validate;
  const log = options.log;
  let hasCertificate = false;

  const server: Server = createServer({
    minVersion: "TLSv1.2",
    requestTimeout: requestTimeoutMs,
    headersTimeout: Math.min(requestTimeoutMs, 10_000),
    // Node checks the two timeouts above on this period (default 30 s).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(requestTimeoutMs / 4))),
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => handle(req, res));
  // A client that fails the handshake (no certificate yet, a port scan) is not worth more than a debug line.
  server.on("tlsClientError", (err: Error) => log.debug({ err: err.message }, "webhook TLS handshake failed"));

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? "/", "https://webhook").pathname;
    if (path !== ADMISSION_PATH) return void reply(res, 404, `no webhook at ${path}; the StageSet webhook is ${ADMISSION_PATH}\n`);
    if (req.method !== "POST") return void reply(res, 405, "use POST with an AdmissionReview\n", { allow: "POST" });
    const contentType = (req.headers["content-type"] ?? "application/json").split(";")[0]!.trim().toLowerCase();
    if (contentType !== "application/json") return void reply(res, 415, `content type ${contentType} is not application/json\n`);
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > maxBodyBytes) return void tooLarge(req, res, maxBodyBytes);

    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        done = true;
        chunks.length = 0;
        tooLarge(req, res, maxBodyBytes);
        return;
      }
      chunks.push(chunk);
    });
    req.on("error", () => {
      done = true;
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      answer(Buffer.concat(chunks).toString("utf8"), res);
    });
  }

  function answer(text: string, res: ServerResponse): void {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      return void reply(res, 400, `the body is not JSON: ${(err as Error).message}\n`);
    }
    try {
      const outcome = reviewAdmission(body, validate);
      const { request, review } = outcome;
      const fields = { uid: request.uid, operation: request.operation, namespace: request.namespace, name: request.name ?? nameFromObject(request.object) };
      if (!review.response.allowed) {
        const causes = review.response.status?.details?.causes.map((c) => c.field) ?? [];
        log.info({ ...fields, dryRun: request.dryRun === true, fields: causes }, "admission webhook denied a StageSet");
      } else if (outcome.validated) {
        log.debug(fields, "admission webhook allowed a StageSet");
      }
      replyJson(res, review);
    } catch (err) {
      if (err instanceof MalformedReviewError) return void reply(res, 400, `${err.message}\n`);
      const uid = uidOf(body);
      log.error({ err: (err as Error).message, uid }, "admission webhook could not validate a StageSet");
      if (uid === undefined) return void reply(res, 500, "internal error\n");
      replyJson(res, internalErrorReview(uid, `the StageSet webhook could not validate the object: ${(err as Error).message}`));
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: options.port, host: options.host }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => log.error({ err: err.message }, "webhook server error"));

  return {
    port: (server.address() as AddressInfo).port,
    setCertificate(certificate) {
      try {
        // Builds the context synchronously: throws when either PEM does not parse or the key is not the certificate's.
        server.setSecureContext({ cert: certificate.certPem, key: certificate.keyPem, minVersion: "TLSv1.2" });
      } catch (err) {
        // OpenSSL's message names the problem (key values mismatch, no start line), never the key.
        throw new Error(`the serving certificate cannot be used: ${(err as Error).message}`, { cause: err });
      }
      hasCertificate = true;
    },
    hasCertificate: () => hasCertificate,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function nameFromObject(obj: unknown): string | undefined {
  if (typeof obj !== "object" || obj === null) return undefined;
  const metadata = (obj as { metadata?: { name?: unknown } }).metadata;
  return typeof metadata?.name === "string" ? metadata.name : undefined;
}

function tooLarge(req: IncomingMessage, res: ServerResponse, limit: number): void {
  // Close after answering: the rest of the body is not worth reading.
  reply(res, 413, `the AdmissionReview is larger than ${limit} bytes\n`, { connection: "close" });
  res.on("finish", () => req.destroy());
}

function replyJson(res: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function reply(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "x-content-type-options": "nosniff",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

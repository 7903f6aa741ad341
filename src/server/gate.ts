/**
 * The gate endpoint (CONTRACT "Gate endpoint"; documentation "Progressive
 * delivery"): a read-only HTTP API that Flagger webhooks and Argo Rollouts
 * analyses ask whether a stage may be relied on.
 *
 * `GET /gate/{namespace}/{stageset}/{stage}` answers `200` when the stage is
 * Ready at the currently pinned revision and `403` otherwise (not Ready, or
 * an unknown StageSet or stage). With `Accept: application/json` it always
 * answers `200` with `{"ready", "stage", "phase", "revision", "message"}`, so a
 * JSON consumer can tell "not ready" from "unreachable". Any other method is
 * `405`. It reads the controller's watch cache only, so every replica serves
 * it, leader or not. Where the documentation says `503` for "not ready",
 * CONTRACT.md's `403` stands.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { StageSet } from "../api/types.js";
import { sourceKey } from "../source/resolve.js";
import { listenOn } from "./listen.js";

/** What the gate answers about one stage. */
export interface GateAnswer {
  ready: boolean;
  stage: string;
  phase: string;
  revision: string;
  message: string;
}

/** Longest URL the gate reads; a longer one is `414`. Kubernetes names keep real paths far below it. */
const MAX_URL_BYTES = 1024;
/** A client that has not sent its request within this time is cut off (slowloris). */
const REQUEST_TIMEOUT_MS = 5_000;
/** An idle keep-alive connection is closed after this long. */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/**
 * The gate's answer for `stage` of `stageSet` (undefined when either is
 * unknown): ready when the stage's phase is Ready and the revision it
 * applied is the one pinned now — the revision the current rollout attempts, or while an update window
 * holds a newer one, the stage's snapshot.
 */
export function gateAnswer(stageSet: StageSet | undefined, stageName: string): GateAnswer | undefined {
  const stage = stageSet?.spec?.stages?.find((s) => s.name === stageName);
  if (!stageSet || !stage) return undefined;
  const status = stageSet.status ?? {};
  const stageStatus = status.stages?.find((s) => s.name === stageName);
  const phase = stageStatus?.phase ?? "Pending";
  const revision = stageStatus?.appliedRevision ?? "";
  const pinned = pinnedRevision(stageSet, stageName);
  const ready = phase === "Ready" && revision !== "" && (pinned === undefined || pinned === revision);
  const message =
    stageStatus?.message ||
    (ready
      ? status.pendingUpdate
        ? `Ready at the pinned revision ${revision}; a newer revision is held by an update window`
        : `Ready at revision ${revision}`
      : pinned !== undefined && revision !== "" && revision !== pinned
          ? `rolling out revision ${pinned}`
          : `stage is ${phase}`);
  return { ready, stage: stageName, phase, revision, message };
}

/** The revision the stage should be at now, when the status tells. */
function pinnedRevision(stageSet: StageSet, stageName: string): string | undefined {
  const status = stageSet.status ?? {};
  if (status.pendingUpdate) return status.lastAppliedSnapshot?.find((s) => s.stage === stageName)?.revision;
  const stage = stageSet.spec.stages.find((s) => s.name === stageName);
  if (!stage) return undefined;
  const key = sourceKey(stage.sourceRef.namespace ?? stageSet.metadata.namespace ?? "", stage.sourceRef.name);
  return status.lastAttemptedRevisions?.[key];
}

export interface GateServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves the gate on `bindAddress` (`:8082`, `127.0.0.1:0`); `lookup` reads
 * a StageSet from the watch cache. Resolves once listening.
 */
export async function startGateServer(options: { bindAddress: string; lookup(namespace: string, name: string): StageSet | undefined }): Promise<GateServer> {
  const server: Server = createServer({ maxHeaderSize: 8 * 1024 }, (req, res) => handle(req, res, options.lookup));
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  await listenOn(server, options.bindAddress);
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function handle(req: IncomingMessage, res: ServerResponse, lookup: (namespace: string, name: string) => StageSet | undefined): void {
  // The gate reads no body: whatever a client sends is discarded, never buffered.
  req.resume();
  if ((req.url ?? "").length > MAX_URL_BYTES) return void send(res, 414, "request URI too long\n");
  const path = new URL(req.url ?? "/", "http://gate").pathname.split("/").slice(1).map(safeDecode);
  if (path.length !== 4 || path[0] !== "gate" || path.slice(1).some((part) => !part)) {
    return void send(res, 404, "not found: use GET /gate/{namespace}/{stageset}/{stage}\n");
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    return void send(res, 405, "method not allowed: the gate is read-only, use GET\n");
  }
  const [, namespace, name, stage] = path as [string, string, string, string];
  const answer = gateAnswer(lookup(namespace, name), stage) ?? {
    ready: false,
    stage,
    phase: "",
    revision: "",
    message: lookup(namespace, name) ? `StageSet ${namespace}/${name} has no stage "${stage}"` : `StageSet ${namespace}/${name} not found`,
  };
  if (wantsJson(req)) return void send(res, 200, `${JSON.stringify(answer)}\n`, "application/json");
  send(res, answer.ready ? 200 : 403, `${answer.ready ? "ready" : "not ready"}: ${answer.message}\n`);
}

function wantsJson(req: IncomingMessage): boolean {
  return (req.headers.accept ?? "").split(",").some((type) => type.split(";")[0]!.trim().toLowerCase() === "application/json");
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return "";
  }
}

function send(res: ServerResponse, status: number, body: string, contentType = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

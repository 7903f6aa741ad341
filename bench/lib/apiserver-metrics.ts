/**
 * API requests counted by the API server itself: `apiserver_request_total`
 * from its /metrics, read before and after a phase. The benchmark's control
 * plane runs nothing else that writes the kinds measured, but its own
 * components keep a background: leases (leader election, node heartbeats),
 * nodes (kwok) and non-resource requests (discovery, /metrics, health) are
 * left out. Dry-run requests are told apart (`APPLY (dry-run)`), since they
 * are how kustomize-controller finds drift.
 */
import https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

export type RequestCounts = Record<string, number>;

const IGNORED_RESOURCES = new Set(["", "leases", "nodes"]);

function scrape(kubeConfig: KubeConfig): Promise<string> {
  const server = new URL(kubeConfig.getCurrentCluster()!.server);
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions = { host: server.hostname, port: server.port, path: "/metrics", method: "GET" };
    kubeConfig
      .applyToHTTPSOptions(options)
      .then(() => {
        const req = https.request(options, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /metrics: ${res.statusCode}`))));
        });
        req.on("error", reject);
        req.end();
      })
      .catch(reject);
  });
}

function labels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const match of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[match[1]!] = match[2]!;
  return out;
}

/** Cumulative request counts by `VERB resource[/subresource]`, dry runs marked. */
export async function requestTotals(kubeConfig: KubeConfig): Promise<RequestCounts> {
  const totals: RequestCounts = {};
  for (const line of (await scrape(kubeConfig)).split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const close = line.lastIndexOf("}");
    const l = labels(line.slice(line.indexOf("{") + 1, close));
    const resource = l.resource ?? "";
    if (IGNORED_RESOURCES.has(resource)) continue;
    const verb = `${l.verb ?? "?"}${l.dry_run ? " (dry-run)" : ""}`;
    const key = `${verb} ${resource}${l.subresource ? `/${l.subresource}` : ""}`;
    totals[key] = (totals[key] ?? 0) + Number(line.slice(close + 1).trim());
  }
  return totals;
}

/** after - before, zero entries dropped. */
export function diffCounts(after: RequestCounts, before: RequestCounts): RequestCounts {
  const out: RequestCounts = {};
  for (const [key, value] of Object.entries(after)) {
    const d = value - (before[key] ?? 0);
    if (d !== 0) out[key] = d;
  }
  return out;
}

/** Takes `count` requests of `key` off (the benchmark's own), dropping the entry at zero. */
export function subtract(counts: RequestCounts, key: string, count = 1): RequestCounts {
  const out = { ...counts };
  out[key] = (out[key] ?? 0) - count;
  if (out[key] === 0) delete out[key];
  return out;
}

/** Totals by verb only (resources summed). */
export function byVerb(counts: RequestCounts): RequestCounts {
  const out: RequestCounts = {};
  for (const [key, value] of Object.entries(counts)) {
    const verb = key.slice(0, key.lastIndexOf(" "));
    out[verb] = (out[verb] ?? 0) + value;
  }
  return out;
}

export const total = (counts: RequestCounts): number => Object.values(counts).reduce((a, b) => a + b, 0);

/**
 * Reads the totals until they stop moving (unchanged over `stableReads`
 * reads `intervalMs` apart, at most `timeoutMs`): a controller's last status
 * write or event can land after the moment the benchmark saw Ready.
 */
export async function settledTotals(kubeConfig: KubeConfig, options: { intervalMs?: number; stableReads?: number; timeoutMs?: number } = {}): Promise<RequestCounts> {
  const intervalMs = options.intervalMs ?? 500;
  const stableReads = options.stableReads ?? 3;
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let last = await requestTotals(kubeConfig);
  let stable = 0;
  while (stable < stableReads && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    const now = await requestTotals(kubeConfig);
    stable = total(diffCounts(now, last)) === 0 ? stable + 1 : 0;
    last = now;
  }
  return last;
}

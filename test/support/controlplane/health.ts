import { request } from "node:https";

export interface ClientTls {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

/** GETs an https health endpoint (/readyz, /healthz); true on HTTP 200, false otherwise. */
export function probeHealth(url: string, tls: ClientTls, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { method: "GET", ...tls, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

import type { Server } from "node:http";

/** Splits `host:port`, `:port` or `[::1]:port`; an empty host means every interface. */
export function parseBindAddress(address: string): { host: string | undefined; port: number } {
  const colon = address.lastIndexOf(":");
  if (colon < 0) throw new Error(`bind address "${address}" has no port`);
  let host = address.slice(0, colon);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return { host: host === "" ? undefined : host, port: Number(address.slice(colon + 1)) };
}

export function listenOn(server: Server, address: string): Promise<void> {
  const { host, port } = parseBindAddress(address);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

import type { Server } from "node:http";
import { parseBindAddress } from "./probes.js";

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

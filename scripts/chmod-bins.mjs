// Marks the package's bin entries executable after tsc has emitted them.
import { chmodSync, existsSync, readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
for (const path of new Set(Object.values(pkg.bin))) {
  const file = new URL(`../${path}`, import.meta.url);
  if (existsSync(file)) chmodSync(file, 0o755);
}

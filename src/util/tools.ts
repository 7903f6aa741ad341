import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, found from this file's location in src/ or dist/src/. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot locate the repository root");
    dir = parent;
  }
  return dir;
}

/**
 * Path of a pinned tool binary. `STAGESET_<NAME>_BIN` overrides (for a
 * container image that ships the tool elsewhere); otherwise `.tools/bin/<name>`
 * from the repository; otherwise the bare name, resolved through PATH.
 */
export function toolPath(name: string): string {
  const envName = `STAGESET_${name.toUpperCase().replace(/-/g, "_")}_BIN`;
  const fromEnv = process.env[envName];
  if (fromEnv) return fromEnv;
  try {
    const local = resolve(repoRoot(), ".tools", "bin", name);
    if (existsSync(local)) return local;
  } catch {
    // not running from a checkout
  }
  return name;
}

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE_NAME = "stageset-controller";
/** Set by release builds (the image and the npm package) to the commit they were built from. */
export const COMMIT_ENV = "STAGESET_COMMIT";

/**
 * `<version> (commit <sha>)`. The version is the package's; the commit comes
 * from $STAGESET_COMMIT, else from the `gitHead` npm records when it packs
 * from a git checkout, else "unknown".
 */
export function versionString(env: NodeJS.ProcessEnv = process.env): string {
  const pkg = readOwnPackageJson();
  const commit = env[COMMIT_ENV] || pkg?.gitHead || "unknown";
  return `${pkg?.version ?? "0.0.0"} (commit ${commit})`;
}

interface PackageJson {
  name?: string;
  version?: string;
  gitHead?: string;
}

/** Walks up from this module (src/cli or dist/src/cli) to the package's own package.json. */
function readOwnPackageJson(): PackageJson | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as PackageJson;
      if (pkg.name === PACKAGE_NAME) return pkg;
    } catch {
      // not here; keep climbing
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

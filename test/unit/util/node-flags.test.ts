import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CONTROLLER_NODE_FLAGS } from "../../../src/util/node-flags.js";
import { repoRoot } from "../../../src/util/tools.js";

test("the image's entrypoint and the bin's shebang start node with CONTROLLER_NODE_FLAGS", () => {
  const dockerfile = readFileSync(join(repoRoot(), "Dockerfile"), "utf8");
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
  assert.ok(entrypoint, "the Dockerfile has an exec-form ENTRYPOINT");
  assert.deepEqual(JSON.parse(entrypoint), ["/nodejs/bin/node", ...CONTROLLER_NODE_FLAGS, "/app/dist/src/main.js"]);

  const shebang = readFileSync(join(repoRoot(), "src", "main.ts"), "utf8").split("\n")[0];
  assert.equal(shebang, `#!/usr/bin/env -S node ${CONTROLLER_NODE_FLAGS.join(" ")}`);
  const compiled = readFileSync(join(repoRoot(), "dist", "src", "main.js"), "utf8").split("\n")[0];
  assert.equal(compiled, shebang, "tsc keeps the shebang");
});

// stagesetctl build, offline, on the apply-correctness case "invalid-variable-name"
// (copied to test/fixtures/cases/): a variable name with a dash is reported as an
// invalid name, naming the variable, the object and the allowed form.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../../src/util/tools.js";
import { runCli } from "../support/cli.js";

const CASE = join(repoRoot(), "test", "fixtures", "cases", "invalid-variable-name");

test("build -f stageset.yaml --source-dir config=artifact names the invalid variable, the object and the allowed form", async () => {
  const result = await runCli(["build", "-f", join(CASE, "stageset.yaml"), "--source-dir", `config=${join(CASE, "artifact")}`], {
    kubeconfig: "/nonexistent/kubeconfig",
  });
  assert.equal(result.code, 3, result.stdout + result.stderr);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /spec\.stages\[0\]\.postBuild: ConfigMap (demo\/)?identity: /);
  assert.match(result.stderr, /"node-identity-client-id" in "\$\{node-identity-client-id\}" is not a valid variable name: a name must match \[_a-zA-Z\]\[_a-zA-Z0-9\]\*/);
  assert.match(result.stderr, /rename the variable \(e\.g\. node_identity_client_id\)/);
  assert.match(result.stderr, /or write \$\$\{node-identity-client-id\} if a literal "\$\{node-identity-client-id\}" was meant/);
  assert.doesNotMatch(result.stderr, /missing closing brace/);
});

// stagesetctl as a subprocess, offline: `build -f FILE --source-dir …` needs no
// cluster at all (KUBECONFIG points nowhere), and every usage mistake exits 2
// with a message that says what to type instead.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { runCli, type CliResult } from "../support/cli.js";

function cli(args: string[], env: Record<string, string> = {}, input = ""): Promise<CliResult> {
  return runCli(args, { kubeconfig: "/nonexistent/kubeconfig", env, input });
}

const work = mkdtempSync(join(tmpdir(), "stagesetctl-build-"));
after(() => rmSync(work, { recursive: true, force: true }));

function writeTree(files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(work, path)), { recursive: true });
    writeFileSync(join(work, path), content);
  }
}

const SECRET_VALUE = "correct-horse-battery";
const SECRET_B64 = Buffer.from("staple").toString("base64");

writeTree({
  "payments.yaml": `apiVersion: stages.metio.wtf/v1
kind: StageSet
metadata:
  name: payments
  namespace: payments
spec:
  stages:
    - name: infrastructure
      sourceRef: { name: infra }
    - name: application
      sourceRef: { name: app }
      path: ./deploy
`,
  "checkout/deploy/web.yaml": `apiVersion: v1
kind: ConfigMap
metadata: { name: web-settings }
data: { replicas: "6", from: checkout }
---
apiVersion: v1
kind: Secret
metadata: { name: web-config }
type: Opaque
stringData: { token: ${SECRET_VALUE} }
data: { extra: ${SECRET_B64} }
`,
  "checkout/infra.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: from-checkout }\n",
  "infra-checkout/sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: deployer }\n",
  "broken/deploy/kustomization.yaml": "resources: [missing.yaml]\n",
  "invalid.yaml": `apiVersion: stages.metio.wtf/v1
kind: StageSet
metadata: { name: bad }
spec:
  stages:
    - name: app
      sourceRef: { name: a }
    - name: app
      sourceRef: { name: b }
`,
});
const manifest = join(work, "payments.yaml");

describe("stagesetctl build offline", { concurrency: true }, () => {
  test("a bare --source-dir feeds every stage, STAGE=PATH overrides one; Secret values are masked", async () => {
    const result = await cli(["build", "-f", manifest, "--source-dir", join(work, "checkout"), "--source-dir", `infrastructure=${join(work, "infra-checkout")}`]);
    assert.equal(result.code, 0, result.stderr);
    const docs = result.stdout.split(/^---$/m).filter((d) => d.trim());
    assert.equal(docs.length, 3);
    assert.match(docs[0]!, /kind: ServiceAccount\n[\s\S]*name: deployer/, "infrastructure came from its own tree");
    assert.doesNotMatch(result.stdout, /from-checkout/);
    assert.match(docs[1]!, /from: checkout/);
    assert.match(docs[2]!, /token: "\*\*\*"/);
    assert.match(docs[2]!, /extra: "\*\*\*"/);
    assert.match(docs[2]!, /pass --show-secrets/);
    assert.ok(!result.stdout.includes(SECRET_VALUE) && !result.stdout.includes(SECRET_B64), "no secret value leaks");
  });

  test("--show-secrets reveals the values; --stage renders only that stage", async () => {
    const result = await cli(["build", "-f", manifest, "--stage", "application", "--source-dir", `application=${join(work, "checkout")}`, "--show-secrets"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`token: ${SECRET_VALUE}`));
    assert.match(result.stdout, new RegExp(`extra: ${SECRET_B64}`));
    assert.doesNotMatch(result.stdout, /ServiceAccount/);
  });

  test("-f - reads the StageSet manifest from standard input", async () => {
    const result = await cli(["build", "-f", "-", "--stage", "application", "--source-dir", `application=${join(work, "checkout")}`], {}, readFileSync(manifest, "utf8"));
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /kind: Secret/);
    assert.ok(!result.stdout.includes(SECRET_VALUE), "masked as with a file");
  });

  test("a stage without a tree needs the cluster: exit 3 naming the --source-dir to add", async () => {
    const result = await cli(["build", "-f", manifest, "--source-dir", `application=${join(work, "checkout")}`]);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /stage "infrastructure" has no --source-dir/);
    assert.match(result.stderr, /--source-dir infrastructure=PATH/);
  });

  test("a failing kustomize build is a runtime error naming the stage's field", async () => {
    const result = await cli(["build", "-f", manifest, "--stage", "application", "--source-dir", join(work, "broken")]);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /spec\.stages\[1\]: kustomize build of "\.\/deploy" failed/);
  });

  test("usage errors exit 2 and say what to type instead", async () => {
    const cases: [string[], RegExp][] = [
      [["build"], /stagesetctl build NAME .* or stagesetctl build -f FILE/],
      [["build", "web", "-f", manifest], /either NAME or -f FILE, not both/],
      [["build", "-f", manifest, "--stage", "app", "--source-dir", work], /--stage app: .* use one of: infrastructure, application/],
      [["build", "-f", manifest, "--source-dir", "apps=./x"], /no stage "apps"; use one of: infrastructure, application/],
      [["build", "-f", manifest, "--source-dir", `application=${join(work, "nope")}`, "--stage", "application"], /is not a directory/],
      [["build", "-f", join(work, "invalid.yaml"), "--source-dir", work], /spec\.stages\[1\]\.name: stage name "app" is already used/],
      [["build", "-f", join(work, "missing.yaml")], /cannot read the file/],
      [["bild"], /Did you mean build\?/],
      [["diff", "web", "--color=rainbow"], /use --color=auto, --color=always or --color=never/],
      [["diff", "web", "--exit-code=perhaps"], /--exit-code takes true or false/],
      [["get", "-o", "wide"], /use -o yaml, -o json/],
      [["reconcile", "web", "--timeout", "soon"], /use e\.g\. --timeout=5m/],
    ];
    await Promise.all(
      cases.map(async ([args, message]) => {
        const result = await cli(args);
        assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
        assert.match(result.stderr, message, args.join(" "));
      }),
    );
  });

  test("--version prints the version and commit", async () => {
    const result = await cli(["--version"], { STAGESET_COMMIT: "0123abc" });
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^\d+\.\d+\.\d+\S* \(commit 0123abc\)\n$/);
  });
});

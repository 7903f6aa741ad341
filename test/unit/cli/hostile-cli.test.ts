import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { KubeObject } from "../../../src/api/types.js";
import { resolveVariables, type VarSource } from "../../../src/build/substitute.js";
import { renderDiffReport } from "../../../src/cli/diff-report.js";
import { loadLocalVarObjects, offlineAwareVarSource } from "../../../src/cli/local-vars.js";
import { hasMaskedValues, hideFingerprints, maskSecret, maskSecretForDiff } from "../../../src/cli/secrets.js";
import { toYaml, toYamlStream } from "../../../src/cli/yaml-output.js";
import { BuildError } from "../../../src/errors.js";
import { KubeConfigError } from "../../../src/kube/errors.js";

const VALUE = "hunter2-very-secret";
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

function liveSecret(value = VALUE): KubeObject {
  const data = { password: Buffer.from(value).toString("base64") };
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: "creds",
      namespace: "apps",
      annotations: {
        [LAST_APPLIED]: JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "creds" }, data, stringData: { extra: value } }),
        "other.tool/copy": `password=${value}`,
        "team": "payments",
      },
    },
    data,
  };
}

describe("Secret values are masked wherever they appear", () => {
  it("the last-applied-configuration annotation and any annotation holding a value", () => {
    const masked = maskSecret(liveSecret());
    const text = toYaml(masked);
    assert.ok(!text.includes(VALUE) && !text.includes(Buffer.from(VALUE).toString("base64")), text);
    assert.equal(masked.metadata.annotations?.[LAST_APPLIED], "***");
    assert.equal(masked.metadata.annotations?.["other.tool/copy"], "***");
    assert.equal(masked.metadata.annotations?.["team"], "payments");
    assert.ok(hasMaskedValues({ ...liveSecret(), data: {} }));
  });

  it("build output (toYamlStream) masks them", () => {
    const text = toYamlStream([liveSecret()], false);
    assert.ok(!text.includes(VALUE) && !text.includes(Buffer.from(VALUE).toString("base64")));
  });

  it("diff still sees a changed value, shows only ***", () => {
    const before = maskSecretForDiff(liveSecret("old-value-123"));
    const after = maskSecretForDiff(liveSecret("new-value-456"));
    assert.notEqual(toYaml(before), toYaml(after));
    const report = renderDiffReport(
      [{ stage: { name: "app", sourceRef: { name: "x" } }, objects: [{ kind: "update", ref: { apiVersion: "v1", kind: "Secret", name: "creds", namespace: "apps" }, live: liveSecret("old-value-123"), merged: liveSecret("new-value-456") }], pruned: [] }] as never,
      { showSecrets: false, showUnchanged: false, prune: true, paint: (_k: unknown, t: string) => t, stageStatus: new Map() } as never,
    );
    assert.ok(report.changed);
    for (const secret of ["old-value-123", "new-value-456"]) {
      assert.ok(!report.text.includes(secret) && !report.text.includes(Buffer.from(secret).toString("base64")), report.text);
    }
    assert.match(hideFingerprints(report.text), /last-applied-configuration: "?\*\*\*"?/);
  });
});

describe("offline build with postBuild.substituteFrom", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "hostile-cli-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const noCluster = (err: unknown): VarSource => ({
    getConfigMap: () => Promise.reject(err),
    getSecret: () => Promise.reject(err),
  });
  const resolve = (source: VarSource) =>
    resolveVariables({ postBuild: { substituteFrom: [{ kind: "Secret", name: "db" }] }, namespace: "tenant-a", stageIndex: 0, varSource: source });

  for (const [what, err] of [
    ["no kubeconfig", new KubeConfigError("no cluster to talk to: ~/.kube/config has no current context with a cluster")],
    ["nothing listening", Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6443"), { code: "ECONNREFUSED" }) })],
  ] as const) {
    it(`${what}: names the Secret and how to give it, not a connection error`, async () => {
      const local = await loadLocalVarObjects([]);
      await assert.rejects(
        resolve(offlineAwareVarSource(noCluster(err), local)),
        (e: unknown) =>
          e instanceof BuildError &&
          /^spec\.stages\[0\]\.postBuild\.substituteFrom\[0\]: Secret tenant-a\/db can only be read from a cluster, and there is none: .*--substitute-from-file FILE.*postBuild\.substitute/.test(e.message),
      );
    });
  }

  it("--substitute-from-file gives the values (stringData and data, Lists unpacked)", async () => {
    const file = join(dir, "vars.yaml");
    await writeFile(
      file,
      `apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {token: plain}\ndata: {b64: ${Buffer.from("decoded").toString("base64")}}\n---\n` +
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: db, namespace: other}\n  data: {x: '1'}\n",
    );
    const vars = await resolve(offlineAwareVarSource(noCluster(new KubeConfigError("none")), await loadLocalVarObjects([file])));
    assert.equal(vars.get("token")?.value, "plain");
    assert.equal(vars.get("b64")?.value, "decoded");
  });
});

describe("assertWellFormed (apply and client-side diff)", () => {
  it("refuses a non-string metadata.namespace or name, naming the object", async () => {
    const { assertWellFormed } = await import("../../../src/apply/objects.js");
    const object = (metadata: Record<string, unknown>) => ({ apiVersion: "v1", kind: "ConfigMap", metadata }) as unknown as KubeObject;
    assert.throws(() => assertWellFormed(object({ name: "app", namespace: { a: 1 } }), "s"), /stage "s": rendered object ConfigMap app has a metadata\.namespace that is a map, not a string/);
    assert.throws(() => assertWellFormed(object({ name: ["x"] }), "s"), /has a metadata\.name that is a list, not a string/);
    assert.doesNotThrow(() => assertWellFormed(object({ name: "app", namespace: "ns" }), "s"));
  });
});

describe("stagesetctl build -f on the subst-secret-in-error case (test/fixtures/hostile)", () => {
  it("fails with the object and variable named, never the value", async () => {
    const { runCli } = await import("../../../src/cli/program.js");
    const { repoRoot } = await import("../../../src/util/tools.js");
    const fixture = join(repoRoot(), "test", "fixtures", "hostile", "subst-secret-in-error");
    let out = "";
    let err = "";
    const code = await runCli(["build", "-f", join(fixture, "stageset.yaml"), "--source-dir", join(fixture, "artifact")], {
      out: (t) => void (out += t),
      err: (t) => void (err += t),
      stdoutIsTTY: false,
      env: { PATH: process.env["PATH"], HOME: process.env["HOME"] },
    });
    assert.equal(code, 3);
    assert.equal(out, "");
    assert.match(err, /ConfigMap app: the object is not valid YAML after substitution .*\$\{token\}/);
    assert.ok(!err.includes("Sup3rS3cretValue"), err);
  });
});

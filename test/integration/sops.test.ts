// SOPS decryption end to end: files encrypted by the real sops binary at test
// time, served as an ExternalArtifact, decrypted in memory by the controller
// with age keys read as the tenant; failures are DecryptionFailed (or
// RBACDenied) naming stage and file; plaintext never reaches status, events,
// logs or the CLI's output.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import type { KubeObject } from "../../src/api/types.js";
import { toolPath } from "../../src/util/tools.js";
import { runCli } from "../support/cli.js";
import { createTestNamespace } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { getStageSet, readyCondition, STAGESET, usePipelineFixture, waitForReason } from "../support/pipeline.js";

const run = promisify(execFile);
const PLAIN = "s3cr3t-plaintext-4c1d";
const DOTENV_PLAIN = "dotenv-plaintext-77aa";
const JSON_PLAIN = "json-plaintext-e0f1";
const BINARY_PLAIN = "binary-plaintext-9b2c";

describe("SOPS decryption", { concurrency: true }, () => {
  const fixture = usePipelineFixture();
  let dir: string;
  let age: { identity: string; recipient: string; file: string };
  let other: { identity: string; recipient: string; file: string };

  async function ageKey(name: string) {
    const file = join(dir, `${name}.agekey`);
    await run(toolPath("age-keygen"), ["-o", file]);
    const text = readFileSync(file, "utf8");
    return { identity: text.split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-"))!, recipient: /public key: (age1\S+)/.exec(text)![1]!, file };
  }

  /** The real sops, encrypting `content` written as `name`. */
  async function encrypt(name: string, content: string, args: string[], recipient = age.recipient): Promise<string> {
    const path = join(dir, name);
    writeFileSync(path, content);
    const { stdout } = await run(toolPath("sops"), ["--disable-version-check", "-e", "--age", recipient, ...args, path], {
      env: { PATH: process.env.PATH, HOME: dir },
      cwd: dir,
      maxBuffer: 1 << 24,
    });
    return stdout;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "stageset-sops-"));
    age = await ageKey("tenant");
    other = await ageKey("other");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A namespace with a tenant ServiceAccount that may manage Secrets/ConfigMaps and read only `keySecret`. */
  async function tenantNamespace(prefix: string, keySecret: string, readable = true): Promise<string> {
    const namespace = await createTestNamespace(fixture.cluster, prefix);
    const { client } = fixture;
    await client.create({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "deployer", namespace } });
    await client.create({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "deployer", namespace },
      rules: [
        { apiGroups: [""], resources: ["configmaps"], verbs: ["*"] },
        { apiGroups: [""], resources: ["secrets"], verbs: ["create", "patch", "update", "delete", "list", "watch"] },
        ...(readable ? [{ apiGroups: [""], resources: ["secrets"], resourceNames: [keySecret], verbs: ["get"] }] : []),
        { apiGroups: [""], resources: ["secrets"], resourceNames: ["app-secret", "generated"], verbs: ["get"] },
      ],
    });
    await client.create({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "deployer", namespace },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "deployer" },
      subjects: [{ kind: "ServiceAccount", name: "deployer", namespace }],
    });
    await client.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: keySecret, namespace },
      stringData: { "tenant.agekey": `# the tenant's key\n${age.identity}\n` },
    });
    return namespace;
  }

  const stageSet = (namespace: string, secretName = "sops-keys") => ({
    ...STAGESET,
    metadata: { name: "secure", namespace },
    spec: { serviceAccountName: "deployer", decryption: { provider: "sops", secretRef: { name: secretName } }, stages: [{ name: "app", sourceRef: { name: "app" } }] },
  });

  test("age, the documented encrypted-regex: manifests, a dotenv secretGenerator, JSON and binary are applied as plaintext; nothing leaks", async () => {
    const namespace = await tenantNamespace("sops-ok", "sops-keys");
    const { client, server } = fixture;
    const files = {
      "secret.yaml": await encrypt(
        "secret.yaml",
        `apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-secret\nstringData:\n  password: ${PLAIN}\n`,
        ["--encrypted-regex", "^(data|stringData)$"],
      ),
      "config.json": await encrypt(
        "config.json",
        JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "from-json" }, data: { value: JSON_PLAIN } }),
        ["--encrypted-regex", "^data$"],
      ),
      "app.env": await encrypt("app.env", `TOKEN=${DOTENV_PLAIN}\n`, []),
      "blob.bin": await encrypt("blob.bin", BINARY_PLAIN, ["--input-type", "binary", "--output-type", "binary"]),
      "plain.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  side: by-side\n",
      "kustomization.yaml":
        "resources: [secret.yaml, config.json, plain.yaml]\nsecretGenerator:\n- name: generated\n  envs: [app.env]\n  options: {disableNameSuffixHash: true}\nconfigMapGenerator:\n- name: binary\n  files: [blob.bin]\n  options: {disableNameSuffixHash: true}\n",
    };
    assert.ok(!files["secret.yaml"].includes(PLAIN), "sops encrypted the value");
    await publishExternalArtifact(client, namespace, "app", server.add(`${namespace}-app`, files, "r1"));
    const logs: string[] = [];
    const controller = await startTestController(fixture.cluster, namespace, [], { logLines: logs });
    try {
      await client.create(stageSet(namespace));
      await waitForReason(client, namespace, "secure", "Succeeded", 90_000);
      assert.ok(logs.length > 0, "the controller's logs (at debug level) were captured");
      const secret = await client.get({ apiVersion: "v1", kind: "Secret", namespace, name: "app-secret" });
      assert.equal(Buffer.from((secret?.data as Record<string, string>).password!, "base64").toString(), PLAIN);
      const generated = await client.get({ apiVersion: "v1", kind: "Secret", namespace, name: "generated" });
      assert.equal(Buffer.from((generated?.data as Record<string, string>).TOKEN!, "base64").toString(), DOTENV_PLAIN);
      const json = await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "from-json" });
      assert.equal((json?.data as Record<string, string>).value, JSON_PLAIN);
      const binary = await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "binary" });
      const blob = (binary?.data as Record<string, string> | undefined)?.["blob.bin"] ?? Buffer.from((binary?.binaryData as Record<string, string>)["blob.bin"]!, "base64").toString();
      assert.equal(blob, BINARY_PLAIN);
      const plain = await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "plain" });
      assert.equal((plain?.data as Record<string, string>).side, "by-side", "a file without SOPS metadata passes untouched");

      // The CLI decrypts the same way, masked unless --show-secrets.
      const kubeconfig = fixture.cluster.kubeconfigPath;
      const build = await runCli(["build", "secure", "-n", namespace, "--as-tenant"], { kubeconfig });
      assert.equal(build.code, 0, build.stderr);
      assert.match(build.stdout, /password: "\*\*\*"/);
      const diff = await runCli(["diff", "secure", "-n", namespace, "--color=never"], { kubeconfig });
      assert.equal(diff.code, 0, `no change after the rollout: ${diff.stdout}${diff.stderr}`);
      const get = await runCli(["get", "secure", "-n", namespace], { kubeconfig });
      const status = JSON.stringify(await getStageSet(client, namespace, "secure"));
      const events = JSON.stringify((await client.list("v1", "Event", { namespace })).items);
      for (const value of [PLAIN, DOTENV_PLAIN]) {
        for (const [where, text] of [["build", build.stdout + build.stderr], ["diff", diff.stdout], ["get", get.stdout], ["status", status], ["events", events], ["logs", logs.join("")]] as const) {
          assert.ok(!text.includes(value), `${value} appears in ${where}`);
        }
      }
    } finally {
      await controller.stop();
    }
  });

  test("failures: a tampered file (MAC), another recipient (named), a key Secret the tenant may not read (RBACDenied); nothing applied", async () => {
    const { client, server } = fixture;
    const secretYaml = (name: string) => `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\nstringData:\n  password: ${PLAIN}\n`;

    const tampered = await tenantNamespace("sops-mac", "sops-keys");
    const encrypted = await encrypt("t.yaml", secretYaml("app-secret"), ["--encrypted-regex", "^(data|stringData)$"]);
    // Change a plaintext field the MAC covers.
    await publishExternalArtifact(client, tampered, "app", server.add(`${tampered}-app`, { "secret.yaml": encrypted.replace("name: app-secret", "name: app-secret2") }, "r1"));

    const foreign = await tenantNamespace("sops-other", "sops-keys");
    await publishExternalArtifact(client, foreign, "app", server.add(`${foreign}-app`, { "secret.yaml": await encrypt("o.yaml", secretYaml("app-secret"), [], other.recipient) }, "r1"));

    const denied = await tenantNamespace("sops-denied", "sops-keys", false);
    await publishExternalArtifact(client, denied, "app", server.add(`${denied}-app`, { "secret.yaml": encrypted }, "r1"));

    const controllers = await Promise.all([tampered, foreign, denied].map((ns) => startTestController(fixture.cluster, ns)));
    try {
      for (const ns of [tampered, foreign, denied]) await client.create(stageSet(ns));
      const mac = await waitForReason(client, tampered, "secure", "DecryptionFailed", 60_000);
      assert.match(readyCondition(mac)?.message ?? "", /^stage "app": spec\.stages\[0\]: secret\.yaml: .*MAC/i);
      const recipients = await waitForReason(client, foreign, "secure", "DecryptionFailed", 60_000);
      assert.match(readyCondition(recipients)?.message ?? "", new RegExp(`secret\\.yaml.*${other.recipient}`));
      const rbac = await waitForReason(client, denied, "secure", "RBACDenied", 60_000);
      assert.match(readyCondition(rbac)?.message ?? "", /sops-keys/);
      for (const [ns, s] of [[tampered, mac], [foreign, recipients], [denied, rbac]] as const) {
        assert.ok(!JSON.stringify(s).includes(PLAIN), "no plaintext in status");
        const applied = (await client.list("v1", "Secret", { namespace: ns })).items.map((o: KubeObject) => o.metadata.name);
        assert.ok(!applied.includes("app-secret"), `nothing of the stage applied in ${ns}`);
      }
    } finally {
      await Promise.all(controllers.map((c) => c.stop()));
    }
  });

  test("offline: build -f --source-dir decrypts with --decryption-key-file (and SOPS_AGE_KEY_FILE), masked unless --show-secrets", async () => {
    const tree = mkdtempSync(join(dir, "tree-"));
    writeFileSync(
      join(tree, "secret.yaml"),
      await encrypt("offline.yaml", `apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-secret\nstringData:\n  password: ${PLAIN}\n`, ["--encrypted-regex", "^(data|stringData)$"]),
    );
    const manifest = join(dir, "offline-stageset.yaml");
    writeFileSync(
      manifest,
      "apiVersion: stages.metio.wtf/v1\nkind: StageSet\nmetadata: {name: secure, namespace: default}\nspec:\n  decryption: {provider: sops, secretRef: {name: sops-keys}}\n  stages:\n  - name: app\n    sourceRef: {name: app}\n",
    );
    const args = ["build", "-f", manifest, "--source-dir", `app=${tree}`];
    const masked = await runCli([...args, "--decryption-key-file", age.file], { kubeconfig: "/nonexistent" });
    assert.equal(masked.code, 0, masked.stderr);
    assert.match(masked.stdout, /password: "\*\*\*"/);
    assert.ok(!masked.stdout.includes(PLAIN));
    const shown = await runCli([...args, "--show-secrets"], { kubeconfig: "/nonexistent", env: { SOPS_AGE_KEY_FILE: age.file } });
    assert.equal(shown.code, 0, shown.stderr);
    assert.ok(shown.stdout.includes(Buffer.from(PLAIN).toString("base64")) || shown.stdout.includes(PLAIN), "--show-secrets reveals the decrypted value");
    const wrongKey = await runCli([...args, "--decryption-key-file", other.file], { kubeconfig: "/nonexistent" });
    assert.equal(wrongKey.code, 3);
    assert.match(wrongKey.stderr, new RegExp(`secret\\.yaml.*${age.recipient}`), "names the recipients the file was encrypted for");
  });
});

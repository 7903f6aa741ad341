import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { KubeObject, Stage } from "../../../src/api/types.js";
import { BuildError, Reasons } from "../../../src/errors.js";
import { buildStage, type VarSource } from "../../../src/build/index.js";
import { repoRoot } from "../../../src/util/tools.js";

// These tests run the real build helper (.tools/bin/kbuild, the kustomize API, built by hack/tools.sh).
const fixtures = join(repoRoot(), "test", "fixtures", "build");

function stage(fields: Partial<Stage> = {}): Stage {
  return { name: "app", sourceRef: { name: "src" }, ...fields };
}

const ids = (objects: KubeObject[]) => objects.map((o) => `${o.kind}/${o.metadata.name}`);

/** The parts of a Deployment these tests read. */
type Workload = KubeObject & {
  spec: {
    replicas: number;
    template: { spec: { automountServiceAccountToken?: boolean; containers: { image: string; env: { name: string; value: unknown }[]; envFrom: { configMapRef: { name: string } }[] }[]; volumes: { secret: { defaultMode: number } }[] } };
  };
};

const noVars: VarSource = { getConfigMap: async () => undefined, getSecret: async () => undefined };

async function build(root: string, fields: Partial<Stage> = {}, extra: { varSource?: VarSource; strictSubstitution?: boolean; stageIndex?: number } = {}) {
  return buildStage({ root, stageIndex: extra.stageIndex ?? 0, stage: stage(fields), namespace: "apps", varSource: extra.varSource ?? noVars, strictSubstitution: extra.strictSubstitution });
}

async function rejectsWith(promise: Promise<unknown>, ...fragments: string[]) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BuildError, `expected a BuildError, got ${String(err)}`);
    assert.equal(err.reason, Reasons.BuildFailed);
    for (const fragment of fragments) assert.ok(err.message.includes(fragment), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(fragment)}`);
    return true;
  });
}

/** A snapshot of a directory tree's names and contents, to prove a build never writes to the artifact. */
async function snapshot(dir: string): Promise<string> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = await Promise.all(
    entries.filter((e) => e.isFile()).map(async (e) => `${join(e.parentPath, e.name)}:${await readFile(join(e.parentPath, e.name), "utf8")}`),
  );
  return files.sort().join("\n");
}

describe("buildStage with the real kustomize", () => {
  it("generates a kustomization for a plain directory, nested directories and packaged sub-kustomizations included", async () => {
    const root = join(fixtures, "plain");
    const before = await snapshot(root);
    const objects = await build(root);
    assert.deepEqual(ids(objects).sort(), ["ConfigMap/packaged-d", "ConfigMap/plain-a", "ConfigMap/plain-c1", "ConfigMap/plain-c2", "Service/plain-b"].sort());
    assert.equal(await snapshot(root), before, "the artifact must not change");
  });

  it("builds an existing kustomization with resources and a configMapGenerator, and only what it lists", async () => {
    const objects = await build(join(fixtures, "kustomized"));
    const config = objects.find((o) => o.kind === "ConfigMap");
    assert.match(String(config?.metadata.name), /^app-config-[a-z0-9]+$/);
    assert.deepEqual(config?.["data"], { "config.properties": "color=blue\n", mode: "production" });
    const deployment = objects.find((o) => o.kind === "Deployment") as Workload;
    assert.equal(deployment.spec.template.spec.containers[0]?.envFrom[0]?.configMapRef.name, config?.metadata.name);
    assert.equal(deployment.spec.template.spec.volumes[0]?.secret.defaultMode, 420, "0644 is octal, as go-yaml reads it");
    assert.ok(!ids(objects).includes("ConfigMap/not-in-the-kustomization"));
  });

  for (const [dir, file] of [["yml", "kustomization.yml"], ["capital", "Kustomization"]]) {
    it(`patches a kustomization named ${file} in place`, async () => {
      const objects = await build(join(fixtures, "other-names"), {
        path: dir,
        patches: [{ patch: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: any\ndata:\n  source: patched\n", target: { kind: "ConfigMap" } }],
      });
      assert.deepEqual(objects.map((o) => [o.metadata.name, o["data"]]), [[`from-${dir}-s`, { source: "patched" }]]);
    });
  }

  it("builds a sub-path whose kustomization reads sibling directories of the artifact", async () => {
    const objects = await build(join(fixtures, "overlay"), { path: "./overlays/prod" });
    assert.deepEqual(ids(objects).sort(), ["ConfigMap/prod-extra", "Deployment/prod-web"]);
  });

  it("flattens kind: List and nested *List kinds", async () => {
    const objects = await build(join(fixtures, "list"));
    assert.deepEqual(ids(objects).sort(), ["ConfigMap/from-list-1", "ConfigMap/from-nested-list", "Service/from-list-2"]);
  });

  it("leaves namespaces as rendered", async () => {
    const objects = await build(join(fixtures, "list"));
    assert.ok(objects.every((o) => o.metadata.namespace === undefined));
  });

  it("applies a strategic-merge patch to the targets its selector picks", async () => {
    const objects = await build(join(fixtures, "patches"), {
      patches: [
        {
          patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: any\nspec:\n  replicas: 5\n",
          target: { kind: "Deployment", labelSelector: "tier=backend" },
        },
      ],
    });
    const replicas = Object.fromEntries(objects.map((o) => [o.metadata.name, (o as Workload).spec.replicas]));
    assert.deepEqual(replicas, { web: 1, worker: 5 });
  });

  it("applies a JSON6902 patch to its target", async () => {
    const objects = await build(join(fixtures, "patches"), {
      patches: [{ patch: "- op: replace\n  path: /spec/replicas\n  value: 6\n", target: { group: "apps", version: "v1", kind: "Deployment", name: "web" } }],
    });
    const replicas = Object.fromEntries(objects.map((o) => [o.metadata.name, (o as Workload).spec.replicas]));
    assert.deepEqual(replicas, { web: 6, worker: 1 });
  });

  it("adds stage patches after the kustomization's own", async () => {
    const objects = await build(join(fixtures, "kustomized"), {
      patches: [{ patch: "- op: add\n  path: /metadata/labels\n  value: {patched: \"yes\"}\n", target: { kind: "Deployment" } }],
    });
    assert.deepEqual(objects.find((o) => o.kind === "Deployment")?.metadata.labels, { patched: "yes" });
  });

  it("names the patch kustomize cannot apply", async () => {
    await rejectsWith(
      build(join(fixtures, "patches"), {
        patches: [
          { patch: "- op: replace\n  path: /spec/replicas\n  value: 2\n", target: { kind: "Deployment", name: "web" } },
          { patch: "- op: replace\n  path: /spec/does/not/exist\n  value: 2\n", target: { kind: "Deployment", name: "worker" } },
          { patch: "- op: replace\n  path: /spec/replicas\n  value: 3\n", target: { kind: "Deployment", name: "worker" } },
        ],
      }, { stageIndex: 1 }),
      "spec.stages[1].patches[1]",
      "cannot be applied",
    );
    await rejectsWith(
      build(join(fixtures, "patches"), { patches: [{ patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: missing\nspec:\n  replicas: 2\n" }] }),
      "spec.stages[0].patches[0]",
    );
  });

  it("names the stage path when it does not exist", async () => {
    await rejectsWith(build(join(fixtures, "plain"), { path: "./does-not-exist" }, { stageIndex: 3 }), "spec.stages[3].path", "./does-not-exist", "does not exist");
  });

  it("refuses a stage path that escapes the artifact", async () => {
    await rejectsWith(build(join(fixtures, "overlay"), { path: "../plain" }), "spec.stages[0].path", "outside the artifact");
  });

  it("refuses a kustomization that reads outside the artifact", async () => {
    await rejectsWith(build(join(fixtures, "escape"), { path: "app" }), 'refused to read "/etc/hostname"', "outside the artifact");
  });

  it("reports a YAML file that is not a Kubernetes manifest by its artifact-relative name", async () => {
    await assert.rejects(build(join(fixtures, "not-manifest")), (err: unknown) => {
      assert.ok(err instanceof BuildError);
      assert.match(err.message, /values\.yaml/);
      assert.ok(!err.message.includes(tmpdir()), `message leaks the workspace path: ${err.message}`);
      assert.ok(!err.message.includes(fixtures), `message leaks the artifact path: ${err.message}`);
      return true;
    });
  });

  describe("postBuild substitution", () => {
    const source: VarSource = {
      getConfigMap: async (ns, name) => (ns === "apps" && name === "cluster-vars" ? { data: { cluster_name: "prod-eu", replicas: "3", automount: "false", image_tag: "1.28" } } : undefined),
      getSecret: async (ns, name) => (ns === "apps" && name === "creds" ? { data: { api_token: Buffer.from("t0ken").toString("base64") } } : undefined),
    };
    const postBuild = {
      substitute: { debug_enabled: "true", feature_flag: "on" },
      substituteFrom: [
        { kind: "ConfigMap" as const, name: "cluster-vars" },
        { kind: "Secret" as const, name: "creds" },
        { kind: "Secret" as const, name: "absent", optional: true },
      ],
    };

    it("substitutes from inline values, ConfigMaps and Secrets with Flux's semantics", async () => {
      const objects = await build(join(fixtures, "substitution"), { postBuild }, { varSource: source });
      const deployment = objects.find((o) => o.kind === "Deployment") as Workload;
      assert.equal(deployment.metadata.name, "web", "default ${app_name:=web}");
      assert.equal(deployment.metadata.labels?.["cluster"], "prod-eu");
      assert.equal(deployment.spec.replicas, 3, "a number stays a number");
      assert.equal(deployment.spec.template.spec.automountServiceAccountToken, false, "a boolean stays a boolean");
      const container = deployment.spec.template.spec.containers[0];
      assert.equal(container?.image, "nginx:1.28", "a set variable wins over its default");
      const env = Object.fromEntries(container!.env.map((e) => [e.name, e.value]));
      // As in Flux, substitution runs on kustomize's output, and kustomize does not keep the
      // source's quotes: `"${debug_enabled}"` renders bare, so "true" becomes a boolean and an
      // unset variable an empty (null) value.
      assert.deepEqual(env, { DEBUG: true, LITERAL: "${kept_literal}", TOKEN: "t0ken", UNSET: null });
      const flags = objects.find((o) => o.metadata.name === "flags") as KubeObject & { data: Record<string, string> };
      // kustomize quotes "yes" (ambiguous), so it stays a string; the substituted `on` is read
      // like Flux reads it (go-yaml v2, YAML 1.1): a boolean.
      assert.deepEqual(flags.data, { enabled: "yes", feature: true });
    });

    it("skips objects that opt out by annotation or label", async () => {
      const objects = await build(join(fixtures, "substitution"), { postBuild }, { varSource: source });
      const script = objects.find((o) => o.metadata.name === "script") as KubeObject & { data: Record<string, string> };
      assert.equal(script.data["run.sh"], "echo ${HOME} $${x} ${cluster_name}\n");
      const labelled = objects.find((o) => o.metadata.name === "labelled-script") as KubeObject & { data: Record<string, string> };
      assert.equal(labelled.data["run.sh"], "echo ${cluster_name}");
    });

    it("fails naming the reference when a required source is missing", async () => {
      await rejectsWith(
        build(join(fixtures, "substitution"), { postBuild: { substituteFrom: [{ kind: "Secret", name: "creds" }, { kind: "ConfigMap", name: "nope" }] } }, { varSource: source }),
        "spec.stages[0].postBuild.substituteFrom[1]",
        "ConfigMap apps/nope",
      );
    });

    it("fails naming an invalid variable name", async () => {
      await rejectsWith(build(join(fixtures, "substitution"), { postBuild: { substitute: { "cluster-name": "x" } } }), '"cluster-name"', "postBuild.substitute");
    });

    it("in strict mode fails on an undefined variable without default", async () => {
      await rejectsWith(build(join(fixtures, "substitution"), { postBuild }, { varSource: source, strictSubstitution: true }), '"not_defined"', "Deployment");
    });
  });
});

describe("buildStage performance", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "stageset-build-perf-"));
    for (let d = 0; d < 10; d++) {
      await mkdir(join(root, `team-${d}`));
      for (let i = 0; i < 100; i++) {
        const n = d * 100 + i;
        await writeFile(
          join(root, `team-${d}`, `cm-${n}.yaml`),
          `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${n}\n  labels:\n    cluster: \${cluster}\ndata:\n  index: "${n}"\n  mode: ${n % 2 ? "a" : "b"}\n`,
        );
      }
    }
  });
  after(() => rm(root, { recursive: true, force: true }));

  it("builds and substitutes a 1000-object directory", async (t) => {
    const started = performance.now();
    const objects = await build(root, { postBuild: { substitute: { cluster: "eu" } } });
    const elapsed = performance.now() - started;
    assert.equal(objects.length, 1000);
    assert.equal(objects[999]?.metadata.labels?.["cluster"], "eu");
    // Reported, not asserted: timing assertions are for bench/.
    t.diagnostic(`built 1000 objects in ${elapsed.toFixed(0)} ms`);
  });
});


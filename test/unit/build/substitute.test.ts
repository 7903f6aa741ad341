import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PostBuild } from "../../../src/api/types.js";
import { BuildError, StageSetError, Reasons } from "../../../src/errors.js";
import { splitDocuments } from "../../../src/build/manifests.js";
import { resolveVariables, substituteDocuments, type VarSource, type Variable } from "../../../src/build/substitute.js";

/** An in-memory VarSource: ConfigMaps and Secrets keyed by `namespace/name`. */
function memorySource(objects: { configMaps?: Record<string, Record<string, string>>; secrets?: Record<string, Record<string, string>> }): VarSource & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    getConfigMap: async (ns, name) => {
      reads.push(`ConfigMap ${ns}/${name}`);
      const data = objects.configMaps?.[`${ns}/${name}`];
      return data && { data };
    },
    getSecret: async (ns, name) => {
      reads.push(`Secret ${ns}/${name}`);
      const data = objects.secrets?.[`${ns}/${name}`];
      return data && { data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])) };
    },
  };
}

const values = (vars: Map<string, Variable>) => Object.fromEntries([...vars].map(([k, v]) => [k, v.value]));

function vars(entries: Record<string, string>): Map<string, Variable> {
  return new Map(Object.entries(entries).map(([k, value]) => [k, { value, origin: "spec.stages[0].postBuild.substitute" }]));
}

function substitute(yamlText: string, variables: Map<string, Variable>, strict = false) {
  return substituteDocuments(splitDocuments(yamlText), variables, { stageIndex: 0, strict });
}

describe("resolveVariables", () => {
  it("reads substituteFrom in order, later sources override earlier, inline substitute overrides all", async () => {
    const source = memorySource({
      configMaps: { "apps/first": { a: "cm1", b: "cm1", c: "cm1" }, "apps/second": { b: "cm2" } },
      secrets: { "apps/creds": { c: "secret", token: "s3cr3t\n" } },
    });
    const postBuild: PostBuild = {
      substitute: { a: "inline" },
      substituteFrom: [
        { kind: "ConfigMap", name: "first" },
        { kind: "ConfigMap", name: "second" },
        { kind: "Secret", name: "creds" },
      ],
    };
    const resolved = await resolveVariables({ postBuild, namespace: "apps", stageIndex: 0, varSource: source });
    assert.deepEqual(values(resolved), { a: "inline", b: "cm2", c: "secret", token: "s3cr3t" });
    assert.deepEqual(source.reads, ["ConfigMap apps/first", "ConfigMap apps/second", "Secret apps/creds"]);
  });

  it("drops newlines from values, as Flux does", async () => {
    const resolved = await resolveVariables({ postBuild: { substitute: { x: "a\nb\n" } }, namespace: "n", stageIndex: 0, varSource: memorySource({}) });
    assert.equal(resolved.get("x")?.value, "ab");
  });

  it("skips a missing optional source", async () => {
    const resolved = await resolveVariables({
      postBuild: { substituteFrom: [{ kind: "Secret", name: "absent", optional: true }], substitute: { y: "1" } },
      namespace: "n",
      stageIndex: 0,
      varSource: memorySource({}),
    });
    assert.deepEqual(values(resolved), { y: "1" });
  });

  it("fails on a missing required source, naming the reference and the object", async () => {
    await assert.rejects(
      resolveVariables({
        postBuild: { substituteFrom: [{ kind: "ConfigMap", name: "present" }, { kind: "ConfigMap", name: "cluster-vars" }] },
        namespace: "apps",
        stageIndex: 2,
        varSource: memorySource({ configMaps: { "apps/present": {} } }),
      }),
      (err: unknown) =>
        err instanceof BuildError &&
        err.reason === Reasons.BuildFailed &&
        err.message.includes("spec.stages[2].postBuild.substituteFrom[1]") &&
        err.message.includes("ConfigMap apps/cluster-vars not found"),
    );
  });

  it("wraps a read failure in a BuildError and keeps a typed StageSetError as it is", async () => {
    const failing: VarSource = { getConfigMap: async () => { throw new Error("connection refused"); }, getSecret: async () => undefined };
    await assert.rejects(
      resolveVariables({ postBuild: { substituteFrom: [{ kind: "ConfigMap", name: "c" }] }, namespace: "n", stageIndex: 0, varSource: failing }),
      (err: unknown) => err instanceof BuildError && err.message.includes("substituteFrom[0]") && err.message.includes("connection refused"),
    );
    const denied = new StageSetError(Reasons.RBACDenied, "forbidden");
    const refusing: VarSource = { getConfigMap: async () => undefined, getSecret: async () => { throw denied; } };
    await assert.rejects(
      resolveVariables({ postBuild: { substituteFrom: [{ kind: "Secret", name: "s" }] }, namespace: "n", stageIndex: 0, varSource: refusing }),
      (err: unknown) => err === denied,
    );
  });
});

describe("substituteDocuments", () => {
  it("substitutes on the text, so numbers and booleans keep their YAML types", () => {
    const [obj] = substitute("apiVersion: v1\nkind: X\nmetadata:\n  name: ${n}\nspec:\n  replicas: ${r}\n  enabled: ${b}\n  quoted: \"${r}\"\n", vars({ n: "x", r: "3", b: "true" }));
    assert.deepEqual(obj, { apiVersion: "v1", kind: "X", metadata: { name: "x" }, spec: { replicas: 3, enabled: true, quoted: "3" } });
  });

  it("applies defaults, escapes and empties undefined variables", () => {
    const [obj] = substitute("kind: X\nmetadata:\n  name: ${n:=dflt}\ndata:\n  lit: $${x}\n  gone: \"${unset}\"\n", vars({ other: "1" }));
    assert.deepEqual(obj, { kind: "X", metadata: { name: "dflt" }, data: { lit: "${x}", gone: "" } });
  });

  it("leaves objects annotated or labelled substitute: disabled untouched", () => {
    const text = [
      "kind: A\nmetadata:\n  name: a\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  x: ${v} $${w}\n",
      "---\nkind: B\nmetadata:\n  name: b\n  labels:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  x: ${v}\n",
      "---\nkind: C\nmetadata:\n  name: c\ndata:\n  x: ${v}\n",
    ].join("");
    const [a, b, c] = substitute(text, vars({ v: "V" })) as { data: { x: string } }[];
    assert.equal(a?.data.x, "${v} $${w}");
    assert.equal(b?.data.x, "${v}");
    assert.equal(c?.data.x, "V");
  });

  it("does nothing at all without variables (Flux skips substitution then)", () => {
    const [obj] = substitute("kind: X\nmetadata:\n  name: ${n:=d}\n", new Map());
    assert.deepEqual(obj, { kind: "X", metadata: { name: "${n:=d}" } });
  });

  it("refuses an invalid variable name, naming it and its source", () => {
    const invalid = new Map([["my-var", { value: "x", origin: "spec.stages[1].postBuild.substituteFrom[0] (ConfigMap vars)" }]]);
    assert.throws(
      () => substituteDocuments(["kind: X\nmetadata:\n  name: x\n"], invalid, { stageIndex: 1 }),
      (err: unknown) =>
        err instanceof BuildError &&
        err.message.includes('"my-var"') &&
        err.message.includes("substituteFrom[0] (ConfigMap vars)") &&
        err.message.includes("[_a-zA-Z][_a-zA-Z0-9]*; rename it (e.g. my_var)"),
    );
  });

  it("strict mode names the undefined variable and the object", () => {
    assert.throws(
      () => substitute("kind: Deployment\nmetadata:\n  name: web\n  namespace: apps\nspec:\n  x: ${nope}\n", vars({ a: "1" }), true),
      (err: unknown) => err instanceof BuildError && err.message.includes('"nope"') && err.message.includes("Deployment apps/web"),
    );
  });

  const buildError = (run: () => unknown): BuildError => {
    try {
      run();
    } catch (err) {
      if (err instanceof BuildError) return err;
      throw err;
    }
    assert.fail("no BuildError");
  };

  it("names an invalid variable name, the object, the allowed form and the fix, not a missing brace", () => {
    // ../shared/cases/apply-correctness/invalid-variable-name
    const err = buildError(() =>
      substitute('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: identity\n  namespace: demo\ndata:\n  clientId: "${node-identity-client-id}"\n', vars({ region: "north" })),
    );
    assert.equal(err.message,
      'spec.stages[0].postBuild: ConfigMap demo/identity: "node-identity-client-id" in "${node-identity-client-id}" is not a valid variable name: ' +
        "a name must match [_a-zA-Z][_a-zA-Z0-9]*; rename the variable (e.g. node_identity_client_id) here and where it is set " +
        '(postBuild.substitute or substituteFrom), or write $${node-identity-client-id} if a literal "${node-identity-client-id}" was meant');
    assert.doesNotMatch(err.message, /closing brace/);
  });

  it("says what else is wrong with a malformed expression, with the way out", () => {
    const cm = (value: string) => `kind: ConfigMap\nmetadata:\n  name: s\ndata:\n  x: ${value}\n`;
    const cases: [string, RegExp][] = [
      ["${}", /ConfigMap s: "\$\{\}" has no variable name; write a variable name \(\[_a-zA-Z\]\[_a-zA-Z0-9\]\*\) between the braces, or \$\$\{\} for a literal/],
      ["${a.b}", /ConfigMap s: "a\.b" in "\$\{a\.b\}" is not a valid variable name.*rename the variable \(e\.g\. a_b\)/],
      ["a${b", /ConfigMap s: "\$\{b" has no closing brace "\}" on its line; close it with "\}", or write \$\$\{ for a literal "\$\{"/],
      ["${b:}", /ConfigMap s: "\$\{b:\}" is not a valid substitution .*expected \$\{name:=default\}.*write \$\$\{\.\.\.\} for a literal \$\{\.\.\.\}, or label or annotate the object kustomize\.toolkit\.fluxcd\.io\/substitute: disabled/],
    ];
    for (const [value, message] of cases) {
      assert.match(buildError(() => substitute(cm(value), vars({ a: "1" }))).message, message, value);
    }
  });

  it("never quotes an expression from a Secret (it may be part of a value), only its line", () => {
    const err = buildError(() => substitute("kind: Secret\nmetadata:\n  name: db\nstringData:\n  password: pa${ss-w0rd}\n", vars({ a: "1" })));
    assert.match(err.message, /Secret db: the \$\{\.\.\.\} expression on line 5 of the rendered object uses a variable name that does not match \[_a-zA-Z\]\[_a-zA-Z0-9\]\*/);
    assert.ok(!err.message.includes("ss-w0rd"), err.message);
  });

  it("strict mode: a name that can never be set is reported as invalid, not as unset", () => {
    const err = buildError(() => substitute("kind: ConfigMap\nmetadata:\n  name: s\ndata:\n  x: ${1st_host}\n", vars({ a: "1" }), true));
    assert.match(err.message, /ConfigMap s: "\$\{1st_host\}" uses "1st_host", which is not a valid variable name \(a name must match \[_a-zA-Z\]\[_a-zA-Z0-9\]\*\), so it can never be set/);
    assert.match(err.message, /rename it \(e\.g\. _1st_host\)/);
  });

  it("never puts a variable's value in the error when the result is not YAML", () => {
    const secret = "p@ss: word";
    assert.throws(
      () => substitute("kind: Secret\nmetadata:\n  name: s\nstringData:\n  password: ${pw}\n", vars({ pw: secret })),
      (err: unknown) => err instanceof BuildError && err.message.includes("Secret s") && !err.message.includes("p@ss") && !err.message.includes("word"),
    );
  });
});

/**
 * Hostile substitution inputs (../shared/cases/hostile-inputs: subst-glob-redos,
 * subst-secret-in-error): bounded time, typed errors, no values in messages.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { expand, ExpansionLimitError, EnvsubstSyntaxError, MAX_TRIM_STEPS } from "../../../src/build/envsubst.js";
import { resolveVariables, substituteDocuments, type Variable, type VarSource } from "../../../src/build/substitute.js";
import { BuildError } from "../../../src/errors.js";

const lookup = (vars: Record<string, string>) => (name: string) => ({ value: vars[name] ?? "", defined: true });
const inline = (vars: Record<string, string>) =>
  new Map<string, Variable>(Object.entries(vars).map(([k, value]) => [k, { value, origin: "spec.stages[0].postBuild.substitute" }]));
const configMap = (value: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: r\ndata:\n  a: "${value}"\n`;

/** Runs `fn` and returns its wall time in ms, and the worst event-loop stall seen meanwhile is the same: it is synchronous. */
function timed(fn: () => void): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

describe("pattern trims: Flux's semantics (drone/envsubst path.Match per prefix)", () => {
  const cases: [string, Record<string, string>, string][] = [
    ["${v#foo-}", { v: "foo-bar" }, "bar"],
    ["${v#foo-}", { v: "bar" }, "bar"],
    ["${v##*/}", { v: "registry.io/team/app:1.2" }, "app:1.2"],
    ["${v#*/}", { v: "registry.io/team/app:1.2" }, "team/app:1.2"],
    ["${v%:*}", { v: "registry.io/team/app:1.2" }, "registry.io/team/app"],
    ["${v%%.*}", { v: "a.b.c" }, "a"],
    ["${v%.*}", { v: "a.b.c" }, "a.b"],
    ["${v#*}", { v: "abc" }, "bc"], // the shortest NON-EMPTY prefix, as Flux trims
    ["${v##*}", { v: "abc" }, ""],
    ["${v#?}", { v: "xyz" }, "yz"],
    ["${v#[a-c]}", { v: "bcd" }, "cd"],
    ["${v#[^a-c]}", { v: "bcd" }, "bcd"],
    ["${v##[a-c]*[0-9]}", { v: "a-1-2x" }, "x"],
    ["${v#\\*}", { v: "*x" }, "x"],
    ["${v#[}", { v: "[x" }, "[x"], // malformed: unchanged
    ["${v#[]}", { v: "]x" }, "]x"],
    ["${v#[a-]}", { v: "ax" }, "ax"],
    ["${v%[0-9]}", { v: "a1" }, "a1"], // Flux reverses the pattern too: `]9-0[` is malformed
    ["${v#-}", { v: "-x" }, "x"],
    ["${v#.}", { v: ".x" }, "x"],
    ["${v#(}", { v: "(x" }, "x"],
  ];
  for (const [text, vars, want] of cases) it(`${text} of ${JSON.stringify(vars["v"])} -> ${JSON.stringify(want)}`, () => assert.equal(expand(text, lookup(vars)), want));
});

describe("pattern trims: bounded time (subst-glob-redos)", () => {
  // The bounds below are far from what the fixed code needs (a few ms to a
  // few hundred on a loaded two-core machine) and far below what the faults
  // cost (9.7 s for the case; a quadratic trim of 1,000,000 characters runs
  // for hours): they tell the two apart without failing on a slow machine.
  it("the case's many-star glob on 32 characters renders at once (was 9.7 s)", () => {
    const doc = configMap(`\${v##${"*a".repeat(12)}*b}`);
    const took = timed(() => substituteDocuments([doc], inline({ v: "a".repeat(32) }), { stageIndex: 0 }));
    assert.ok(took < 1000, `took ${took} ms`);
  });

  for (const [name, pattern, value] of [
    ["a 12-star glob on 100,000 characters", `##${"*a".repeat(12)}*b`, "a".repeat(100_000)],
    ["a starless trim on 1,000,000 characters (was quadratic)", "%%x", "a".repeat(1_000_000)],
    ["a 200-element glob on 100,000 characters", `%%${"*a?".repeat(50)}*b`, "a".repeat(100_000)],
  ] as const) {
    it(`${name}: under 5 s, or refused by the step budget`, () => {
      let result: unknown;
      const took = timed(() => {
        try {
          result = substituteDocuments([configMap(`\${v${pattern}}`)], inline({ v: value }), { stageIndex: 0 });
        } catch (err) {
          result = err;
        }
      });
      assert.ok(took < 5000, `took ${Math.round(took)} ms`);
      if (result instanceof Error) {
        assert.ok(result instanceof BuildError, String(result));
        assert.match(result.message, /exceeds the limit of \d+ matching steps/);
        assert.ok(!result.message.includes("aaaa"), "no value in the message");
      }
    });
  }

  it("the budget is shared by every document of a stage", () => {
    const value = "a".repeat(1 << 16);
    const docs = Array.from({ length: (MAX_TRIM_STEPS >> 16) + 2 }, () => configMap("${v##*}"));
    assert.throws(() => substituteDocuments(docs, inline({ v: value }), { stageIndex: 0 }), (err: unknown) => err instanceof BuildError && /matching steps/.test(err.message));
  });

  it("expansion output is bounded: a replacement that multiplies a value is refused before it is built", () => {
    const started = performance.now();
    assert.throws(
      () => expand("${v//a/${v}}", lookup({ v: "a".repeat(100_000) })),
      (err: unknown) => err instanceof ExpansionLimitError && err.variable === "v" && !err.message.includes("aaaa"),
    );
    assert.ok(performance.now() - started < 500);
  });

  it("deeply nested expressions are refused as malformed, not a stack overflow", () => {
    const text = "${a:=".repeat(10_000) + "x" + "}".repeat(10_000);
    assert.throws(() => expand(text, lookup({})), (err: unknown) => err instanceof EnvsubstSyntaxError && /nests more than 64/.test(err.message));
    assert.throws(() => substituteDocuments([configMap(text)], inline({ a: "1" }), { stageIndex: 0 }), BuildError);
  });
});

describe("errors never carry a value (subst-secret-in-error)", () => {
  const SECRET = "Sup3rS3cretValue";
  const secretSource: VarSource = {
    getConfigMap: async () => undefined,
    getSecret: async () => ({ data: { token: Buffer.from(`*${SECRET}`).toString("base64") } }),
  };

  const hostileValues: [string, string][] = [
    ["an alias", `*${SECRET}`],
    ["an unknown tag", `!${SECRET}`],
    ["a bad escape inside quotes", `"\\x${SECRET}`],
    ["a flow collection", `[${SECRET}`],
    ["a block scalar header", `|${SECRET}`],
    ["an anchor and alias bomb", `&a [${SECRET}]`],
  ];
  for (const [what, value] of hostileValues) {
    it(`a Secret value that is ${what} yields a BuildError without the value`, async () => {
      const source: VarSource = { getConfigMap: async () => undefined, getSecret: async () => ({ data: { token: Buffer.from(value).toString("base64") } }) };
      const vars = await resolveVariables({ postBuild: { substituteFrom: [{ kind: "Secret", name: "db" }] }, namespace: "tenant-a", stageIndex: 0, varSource: source });
      let error: unknown;
      try {
        substituteDocuments(["apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  token: ${token}\n  other: x\n"], vars, { stageIndex: 0 });
      } catch (err) {
        error = err;
      }
      if (error === undefined) return; // valid YAML after all: nothing to leak
      assert.ok(error instanceof BuildError, `${(error as Error).name}: not a BuildError`);
      assert.equal(error.reason, "BuildFailed");
      assert.ok(!error.message.includes(SECRET), error.message);
      assert.ok(!String((error as { cause?: unknown }).cause ?? "").includes(SECRET), "nor in its cause");
      assert.match(error.message, /^spec\.stages\[0\]\.postBuild: ConfigMap app: /);
    });
  }

  it("the case itself: a BuildError naming the stage, object and variable", async () => {
    const vars = await resolveVariables({ postBuild: { substituteFrom: [{ kind: "Secret", name: "db" }] }, namespace: "tenant-a", stageIndex: 0, varSource: secretSource });
    assert.throws(
      () => substituteDocuments(["apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  token: ${token}\n"], vars, { stageIndex: 0 }),
      (err: unknown) =>
        err instanceof BuildError &&
        !err.message.includes(SECRET) &&
        /ConfigMap app: the object is not valid YAML after substitution \(.*alias.*\).*\$\{token\}/.test(err.message),
    );
  });

  it("a YAML alias bomb after substitution is a BuildError", () => {
    const bomb = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  a: &a ["${v}","${v}","${v}","${v}","${v}","${v}","${v}","${v}","${v}"]\n' +
      Array.from({ length: 8 }, (_, i) => `  ${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(",")}]\n`).join("");
    assert.throws(() => substituteDocuments([bomb], inline({ v: "x" }), { stageIndex: 0 }), (err: unknown) => err instanceof BuildError && /alias/.test(err.message));
  });
});

describe("rendered identity fields must be strings", () => {
  for (const [field, yaml] of [
    ["namespace", "namespace: {a: 1}"],
    ["namespace", "namespace: [x]"],
    ["namespace", "namespace: 42"],
    ["name", "name: {a: 1}"],
  ] as const) {
    it(`metadata.${field} as ${yaml.split(": ")[1]} is refused naming the object`, () => {
      const doc = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  ${field === "name" ? "" : "name: app\n  "}${yaml}\n`;
      for (const render of [() => substituteDocuments([doc], new Map(), { stageIndex: 1 }), () => substituteDocuments([doc.replace("ConfigMap", "ConfigMap\nx: ${v}")], inline({ v: "1" }), { stageIndex: 1 })]) {
        assert.throws(render, (err: unknown) => err instanceof BuildError && new RegExp(`^spec\\.stages\\[1\\]: (ConfigMap "app"|a ConfigMap object): metadata\\.${field} must be a string`).test(err.message));
      }
    });
  }

  it("inside a List too", () => {
    const doc = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: a\n    namespace: {x: 1}\n";
    assert.throws(() => substituteDocuments([doc], new Map(), { stageIndex: 0 }), /ConfigMap "a": metadata\.namespace must be a string, not a map/);
  });
});

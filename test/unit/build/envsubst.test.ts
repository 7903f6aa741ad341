import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  EnvsubstSyntaxError,
  UndefinedVariableError,
  VARIABLE_NAME_FORM,
  expand,
  isValidVariableName,
  suggestVariableName,
  type SyntaxProblem,
} from "../../../src/build/envsubst.js";

const lenient = (vars: Record<string, string>) => (name: string) => ({ value: vars[name] ?? "", defined: true });
const strict = (vars: Record<string, string>) => (name: string) => ({ value: vars[name] ?? "", defined: name in vars });

describe("expand (Flux envsubst dialect)", () => {
  // Expectations are those of fluxcd/pkg/envsubst's own test table.
  const cases: [string, Record<string, string>, string][] = [
    ["plain text", {}, "plain text"],
    ["${var01}", { var01: "abc" }, "abc"],
    ["${#var01}", { var01: "abcdEFGH28ij" }, "12"],
    ["${var01^}", { var01: "abcd" }, "Abcd"],
    ["${var01^^}", { var01: "abcd" }, "ABCD"],
    ["${var01,}", { var01: "ABCD" }, "aBCD"],
    ["${var01,,}", { var01: "ABCD" }, "abcd"],
    ["${path_name:11}", { path_name: "/home/bozo/ideas/thoughts.for.today" }, "ideas/thoughts.for.today"],
    ["${path_name:11:5}", { path_name: "/home/bozo/ideas/thoughts.for.today" }, "ideas"],
    ["${var=xyz}", { var: "abc" }, "abc"],
    ["${var=xyz}", {}, "xyz"],
    ["${var:=xyz}", {}, "xyz"],
    ["${var:-xyz}", {}, "xyz"],
    ["something ${var=${default_var}}", { default_var: "foo" }, "something foo"],
    ["foo: ${var=prefix${default_var}-suffix}", { default_var: "foo1" }, "foo: prefixfoo1-suffix"],
    ["${stringZ/%abc/XYZ}", { stringZ: "abcABC123ABCabc" }, "abcABC123ABCXYZ"],
    ["${stringZ/#abc/XYZ}", { stringZ: "abcABC123ABCabc" }, "XYZABC123ABCabc"],
    ["${stringZ/#/prefix-}", { stringZ: "somevalue" }, "prefix-somevalue"],
    ["${stringZ/%/-suffix}", { stringZ: "somevalue" }, "somevalue-suffix"],
    ["${stringZ//abc/xyz}", { stringZ: "abcABC123ABCabc" }, "xyzABC123ABCxyz"],
    ["${stringZ/abc/xyz}", { stringZ: "abcABC123ABCabc" }, "xyzABC123ABCabc"],
    ["${stringZ/./}", { stringZ: "foo.bar" }, "foobar"],
    ["${stringZ/\\//-}", { stringZ: "foo/bar" }, "foo-bar"],
    ["${stringZ//\\//-}", { stringZ: "foo/bar/baz" }, "foo-bar-baz"],
    ["${filename#*.}", { filename: "bash.string.txt" }, "string.txt"],
    ["${filename##*.}", { filename: "bash.string.txt" }, "txt"],
    ["${filename#*/}", { filename: "/path/to/file" }, "path/to/file"],
    ["${filename##*/}", { filename: "path/to/file" }, "file"],
    ["${filename%.*}", { filename: "bash.string.txt" }, "bash.string"],
    ["${filename%%.*}", { filename: "bash.string.txt" }, "bash"],
    ["${var=${var01^^}}", { var01: "abcd" }, "ABCD"],
    ["$${var01}", { var01: "abc" }, "${var01}"],
    ["some text ${var01}$${var$${var01}$var01${var01}", { var01: "V" }, "some text V${var${var01}$var01V"],
    ["something $${var=${default_var}}", { default_var: "foo" }, "something ${var=foo}"],
    ["\\\\something ${var=${default_var}}", { default_var: "foo" }, "\\\\something foo"],
    ["a$$b and a lone $ stay", {}, "a$b and a lone $ stay"],
    ["$var is not expanded", { var: "x" }, "$var is not expanded"],
  ];
  for (const [input, vars, output] of cases) {
    it(`${input} -> ${output}`, () => assert.equal(expand(input, lenient(vars)), output));
  }

  it("expands an unset variable to the empty string when not strict", () => {
    assert.equal(expand("a${missing}b", lenient({})), "ab");
  });

  it("uses the default also for a variable set to the empty string", () => {
    assert.equal(expand("${v:=d}", lenient({ v: "" })), "d");
  });

  it("in strict mode refuses an unset variable without a default, naming it", () => {
    assert.throws(() => expand("x: ${missing}", strict({})), (err: unknown) => err instanceof UndefinedVariableError && err.variable === "missing");
    assert.throws(() => expand("${missing^^}", strict({})), UndefinedVariableError);
    assert.equal(expand("${missing:=fallback}", strict({})), "fallback");
  });

  for (const bad of ["${}", "${foo-bar}", "${foo", "${x:=a", "${a.b}", "${#}", "${x:}"]) {
    it(`rejects malformed ${bad}`, () => assert.throws(() => expand(bad, lenient({})), EnvsubstSyntaxError));
  }
});

describe("expand: what is wrong with a malformed expression", () => {
  const syntaxError = (text: string): EnvsubstSyntaxError => {
    try {
      expand(text, lenient({}));
    } catch (err) {
      if (err instanceof EnvsubstSyntaxError) return err;
      throw err;
    }
    assert.fail(`${text} was accepted`);
  };

  // Each of these is "missing closing brace", "bad substitution" or "unable to parse …" to Flux.
  const cases: { text: string; problem: SyntaxProblem; variable?: string; expression: string; message: RegExp }[] = [
    {
      text: 'clientId: "${node-identity-client-id}"',
      problem: "invalid-name",
      variable: "node-identity-client-id",
      expression: "${node-identity-client-id}",
      message: /"node-identity-client-id" in "\$\{node-identity-client-id\}" is not a valid variable name: a name must match \[_a-zA-Z\]\[_a-zA-Z0-9\]\*/,
    },
    { text: "x: ${a.b} y", problem: "invalid-name", variable: "a.b", expression: "${a.b}", message: /"a\.b" .* not a valid variable name/ },
    { text: "${-x}", problem: "invalid-name", variable: "-x", expression: "${-x}", message: /"-x"/ },
    { text: "${a-b:=x}", problem: "invalid-name", variable: "a-b", expression: "${a-b:=x}", message: /"a-b"/ },
    { text: "${#a-b}", problem: "invalid-name", variable: "a-b", expression: "${#a-b}", message: /"a-b"/ },
    { text: "${v:=${node-id}}", problem: "invalid-name", variable: "node-id", expression: "${node-id}", message: /"node-id" in "\$\{node-id\}"/ },
    { text: "${}", problem: "empty-name", expression: "${}", message: /"\$\{\}" has no variable name/ },
    { text: "${#}", problem: "empty-name", expression: "${#}", message: /has no variable name/ },
    { text: "${:=x}", problem: "empty-name", expression: "${:=x}", message: /has no variable name/ },
    { text: "a: ${host\nb: c\n", problem: "unterminated", expression: "${host", message: /"\$\{host" has no closing brace "\}" on its line/ },
    { text: "${x:=a", problem: "unterminated", expression: "${x:=a", message: /no closing brace/ },
    { text: "${v:=${w", problem: "unterminated", expression: "${w", message: /"\$\{w" has no closing brace/ },
    { text: "${a b}", problem: "malformed", expression: "${a b}", message: /unexpected " " after "\$\{a"\); expected \$\{name\} or/ },
    { text: "${x:}", problem: "malformed", expression: "${x:}", message: /expected \$\{name:=default\}, \$\{name:-default\}, \$\{name:offset\}/ },
    { text: "${a/b}", problem: "malformed", expression: "${a/b}", message: /expected \$\{name\/pattern\/string\}/ },
    { text: "${a^x}", problem: "malformed", expression: "${a^x}", message: /unexpected "x" after "\$\{a\^"\); expected \$\{name\^\} or \$\{name\^\^\}/ },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.text)} is ${c.problem}`, () => {
      const err = syntaxError(c.text);
      assert.equal(err.problem, c.problem);
      assert.equal(err.variable, c.variable);
      assert.equal(err.expression, c.expression);
      assert.match(err.message, c.message);
      assert.doesNotMatch(err.message, /missing closing brace$/);
    });
  }

  it("quotes at most the expression's line", () => {
    const err = syntaxError(`k: \${x:=${"a".repeat(200)}\nnext: line\n`);
    assert.equal(err.problem, "unterminated");
    assert.ok(err.expression.length <= 81 && err.expression.endsWith("…"), err.expression);
    assert.ok(!err.message.includes("next: line"));
  });

  it("keeps Flux's verdict on what parses: these expand as in Flux", () => {
    // A leading digit or a non-ASCII letter passes Flux's scanner; such a name is never set, so it is empty.
    assert.equal(expand("[${1abc}]", lenient({})), "[]");
    assert.equal(expand("[${café}]", lenient({})), "[]");
    assert.equal(expand("[${a:=}]", lenient({})), "[]");
    assert.equal(expand("[${a:=}]", lenient({ a: "set" })), "[set]");
    assert.equal(expand("[${a}}]", lenient({ a: "v" })), "[v}]");
    assert.equal(expand("${a:=x\ny}", lenient({})), "x\ny");
  });
});

describe("variable names", () => {
  it("accepts exactly [_a-zA-Z][_a-zA-Z0-9]*", () => {
    for (const good of ["a", "_", "A_1", "_9", "region"]) assert.ok(isValidVariableName(good), good);
    for (const bad of ["", "1a", "a-b", "a.b", "café", "a b"]) assert.ok(!isValidVariableName(bad), bad);
    assert.equal(VARIABLE_NAME_FORM, "[_a-zA-Z][_a-zA-Z0-9]*");
  });

  it("suggests a valid name close to an invalid one", () => {
    assert.equal(suggestVariableName("node-identity-client-id"), "node_identity_client_id");
    assert.equal(suggestVariableName("1abc"), "_1abc");
    assert.equal(suggestVariableName("a.b"), "a_b");
    for (const name of ["node-identity", "1abc", "é", ""]) assert.ok(isValidVariableName(suggestVariableName(name)), name);
  });
});

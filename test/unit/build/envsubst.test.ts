import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EnvsubstSyntaxError, UndefinedVariableError, expand } from "../../../src/build/envsubst.js";

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

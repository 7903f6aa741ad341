import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BuildError } from "../../../src/errors.js";
import { flattenLists, ManifestParseError, parseManifest, parseRendered, splitDocuments } from "../../../src/build/manifests.js";

describe("splitDocuments", () => {
  it("splits kustomize's output on separator lines only, dropping empty documents", () => {
    const text = "a: 1\n---\nb: |\n  x\n  ---\n  y\n---   \n---\nc: 3\n";
    assert.deepEqual(splitDocuments(text), ["a: 1\n", "b: |\n  x\n  ---\n  y\n", "c: 3\n"]);
    assert.deepEqual(splitDocuments(""), []);
  });
});

describe("parseManifest", () => {
  it("resolves scalars like go-yaml v3 (octal modes, no sexagesimal, no timestamps, no yes/no booleans)", () => {
    const value = parseManifest("mode: 0644\nnew: 0o17\nhex: 0x1F\ntime: 12:30\nday: 2001-12-14\nyes: yes\nt: true\nn: ~\n");
    assert.deepEqual(value, { mode: 420, new: 15, hex: 31, time: "12:30", day: "2001-12-14", yes: "yes", t: true, n: null });
  });

  it("resolves scalars like go-yaml v2 (sigs.k8s.io/yaml) for substituted text, as Flux re-reads it", () => {
    assert.deepEqual(parseManifest("a: yes\nb: on\nc: 0644\nd: 8080:80\ne: \"3\"\n", "go-yaml-v2"), { a: true, b: true, c: 420, d: "8080:80", e: "3" });
  });

  it("reports invalid YAML with a line number and without the source excerpt", () => {
    assert.throws(
      () => parseManifest("a: 1\nb: [unclosed\n"),
      (err: unknown) => err instanceof ManifestParseError && err.line >= 2 && !err.message.includes("unclosed"),
    );
    assert.throws(() => parseRendered("a: [", 2), (err: unknown) => err instanceof BuildError && err.message.startsWith("spec.stages[2]: kustomize output is not valid YAML"));
  });
});

describe("flattenLists", () => {
  it("replaces List and *List kinds by their items, recursively", () => {
    const out = flattenLists([
      { kind: "List", items: [{ kind: "A" }, { kind: "ConfigMapList", items: [{ kind: "B" }] }] },
      { kind: "C" },
      { kind: "NotAList" },
      { kind: "PodList" },
    ]);
    assert.deepEqual(out, [{ kind: "A" }, { kind: "B" }, { kind: "C" }, { kind: "NotAList" }, { kind: "PodList" }]);
  });
});

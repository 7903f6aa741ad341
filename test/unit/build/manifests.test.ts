import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BuildError } from "../../../src/errors.js";
import {
  flattenLists,
  ManifestParseError,
  MAX_DOCUMENT_CHARS,
  parseManifest,
  parseRendered,
  parseRenderedJsonLine,
  splitDocuments,
  splitJsonLines,
} from "../../../src/build/manifests.js";

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

describe("parseRenderedJsonLine", () => {
  it("reads kbuild's JSON lines in order, skipping empty lines", () => {
    const text = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"x":"\\n---\\n"}}\n{"apiVersion":"v1","kind":"List","items":[]}\n';
    const lines = splitJsonLines(text);
    assert.equal(lines.length, 2);
    assert.deepEqual(parseRenderedJsonLine(lines[0]!, 0), { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" }, data: { x: "\n---\n" } });
    assert.deepEqual(splitJsonLines(""), []);
  });

  it("names the stage when a line is not JSON, too large, or has a name that is not a string", () => {
    assert.throws(() => parseRenderedJsonLine("{not json", 3), (err: unknown) => err instanceof BuildError && err.message.startsWith("spec.stages[3]: the build helper's output is not JSON"));
    const big = `{"a":"${"x".repeat(MAX_DOCUMENT_CHARS)}"}`;
    assert.throws(() => parseRenderedJsonLine(big, 1), (err: unknown) => err instanceof BuildError && /^spec\.stages\[1\]: a rendered object is larger than 1\.5 MiB/.test(err.message));
    assert.throws(
      () => parseRenderedJsonLine('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":7}}', 2),
      (err: unknown) => err instanceof BuildError && err.message.startsWith("spec.stages[2]: ") && /name/.test(err.message),
    );
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

describe("parseManifest bounds", () => {
  it("refuses a map key given twice, naming its line, in one pass", () => {
    assert.throws(
      () => parseManifest("apiVersion: v1\nkind: ConfigMap\ndata:\n  a: '1'\n  b: '2'\n  a: '3'\n"),
      (err: unknown) => err instanceof ManifestParseError && err.message === "a map has the same key twice" && err.line === 6,
    );
    assert.deepEqual(parseManifest("base: &b {x: 1}\nm:\n  <<: *b\n  <<: {y: 2}\n  z: 3\n"), { base: { x: 1 }, m: { x: 1, y: 2, z: 3 } });
  });

  it("parses a 1 MiB map of short keys (the yaml package's own duplicate check is quadratic there)", () => {
    const keys = Array.from({ length: 25_000 }, (_, i) => `  key${i}: "value-${i}"`).join("\n");
    const parsed = parseManifest(`apiVersion: v1\nkind: ConfigMap\ndata:\n${keys}\n`) as { data: Record<string, string> };
    assert.equal(Object.keys(parsed.data).length, 25_000);
  });

  it("refuses a document larger than the API server stores", () => {
    const big = `apiVersion: v1\nkind: ConfigMap\ndata:\n  blob: "${"x".repeat(MAX_DOCUMENT_CHARS)}"\n`;
    assert.throws(() => parseManifest(big), (err: unknown) => err instanceof ManifestParseError && /larger than 1\.5 MiB/.test(err.message));
  });
});

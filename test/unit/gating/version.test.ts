import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { KubeObject, VersionSpec } from "../../../src/api/types.js";
import { Reasons, StageSetError } from "../../../src/errors.js";
import { evaluateFieldPath, FieldPathSyntaxError, parseFieldPath, toJsonPathPlus } from "../../../src/gating/jsonpath.js";
import {
  cleanArtifactPath,
  InvalidVersionError,
  MAX_VERSION_FILE_BYTES,
  normalizeVersion,
  parseVersion,
  readArtifactFile,
  resolveVersion,
  type VersionInputs,
} from "../../../src/gating/version.js";

/** Asserts an InvalidVersionError (terminal, reason InvalidVersion) whose message matches every pattern. */
function invalidVersion(...patterns: RegExp[]): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof InvalidVersionError, `expected InvalidVersionError, got ${String(err)}`);
    assert.ok(err instanceof StageSetError);
    assert.equal(err.reason, Reasons.InvalidVersion);
    assert.equal(err.terminal, true);
    for (const pattern of patterns) assert.match(err.message, pattern);
    return true;
  };
}

function obj(apiVersion: string, kind: string, name: string, extra: Partial<KubeObject> & { namespace?: string; labels?: Record<string, string> } = {}): KubeObject {
  const { namespace, labels, ...rest } = extra;
  return {
    apiVersion,
    kind,
    metadata: { name, ...(namespace === undefined ? {} : { namespace }), ...(labels === undefined ? {} : { labels }) },
    ...rest,
  };
}

/** Inputs over a fixed render per stage and fixed files; records the calls. */
function inputs(objects: Record<string, KubeObject[]>, files: Record<string, Record<string, string>> = {}) {
  const calls: string[] = [];
  const read: VersionInputs = {
    objectsOf: async (stage) => {
      calls.push(`objectsOf ${stage}`);
      return objects[stage] ?? [];
    },
    readArtifactFile: async (stage, path) => {
      calls.push(`readArtifactFile ${stage} ${path}`);
      return files[stage]?.[path];
    },
  };
  return { read, calls };
}

const web = obj("apps/v1", "Deployment", "web", {
  namespace: "team-a",
  labels: { "app.kubernetes.io/version": "v2.1.0", "app.kubernetes.io/name": "web" },
  spec: {
    template: {
      spec: {
        containers: [
          { name: "web", image: "web:2.1.0", env: [{ name: "A", value: "x" }, { name: "VERSION", value: "2.1.0" }] },
          { name: "sidecar", image: "proxy:1.0.0", env: [{ name: "VERSION", value: "1.0.0" }] },
        ],
      },
    },
  },
});
const meta = obj("v1", "ConfigMap", "app-meta", {
  data: { version: " 3.0.0-rc.1\n", build: 42, nested: { version: "1.0.0" }, flag: true, list: ["1.0.0"], nothing: null, "dotted.key": "4.5.6" },
});

/** Resolves `fieldPath` on `target` (the ConfigMap when the path mentions data, else the Deployment) in stage "app". */
async function fieldPath(fieldPath: string, target: KubeObject = /[.[]data\b|nested/.test(fieldPath) ? meta : web) {
  const { read } = inputs({ app: [web, meta] });
  return resolveVersion({ fromObject: { stage: "app", kind: target.kind, name: target.metadata.name!, fieldPath } }, read);
}

describe("parseVersion", () => {
  it("returns the normalised version: trimmed, leading v or V dropped, prerelease kept, build metadata dropped", () => {
    assert.equal(parseVersion("2.1.0", "o"), "2.1.0");
    assert.equal(parseVersion("v2.1.0", "o"), "2.1.0");
    assert.equal(parseVersion("V2.1.0", "o"), "2.1.0");
    assert.equal(parseVersion("  \t2.1.0\n", "o"), "2.1.0");
    assert.equal(parseVersion("\uFEFF2.1.0\r\n", "o"), "2.1.0");
    assert.equal(parseVersion("v2.1.0-rc.1", "o"), "2.1.0-rc.1");
    assert.equal(parseVersion("2.1.0+build.5", "o"), "2.1.0");
    assert.equal(parseVersion("0.0.0", "o"), "0.0.0");
  });

  it("refuses what is not an exact semantic version, naming the origin, the value and the fix", () => {
    for (const raw of ["2.x", "1.2", "1", "1.2.3.4", "vv1.2.3", "=1.2.3", "01.2.3", "latest", "v", "1.2.3-", "2.1.0 2.2.0", "2.1.0\n2.2.0", "~1.2.3", "^1.2.3", ">=1.0.0"]) {
      assert.throws(
        () => parseVersion(raw, "spec.version.value"),
        invalidVersion(/^spec\.version\.value: /, /is not a semantic version \(MAJOR\.MINOR\.PATCH, a leading v is accepted\); set it to e\.g\. 2\.1\.0$/),
        raw,
      );
    }
    assert.throws(() => parseVersion("2.x", "spec.version.value"), (err: unknown) => {
      assert.equal((err as Error).message, 'spec.version.value: "2.x" is not a semantic version (MAJOR.MINOR.PATCH, a leading v is accepted); set it to e.g. 2.1.0');
      return true;
    });
  });

  it("says an empty or blank value is empty", () => {
    for (const raw of ["", "   ", "\n\t"]) {
      assert.throws(() => parseVersion(raw, "spec.version.value"), invalidVersion(/^spec\.version\.value is empty; set it to a semantic version such as 2\.1\.0/));
    }
  });

  it("shows at most 64 characters of a long value", () => {
    const raw = "x".repeat(60) + "TAIL-NOT-SHOWN" + "y".repeat(100);
    assert.throws(() => parseVersion(raw, "o"), (err: unknown) => {
      assert.ok(err instanceof InvalidVersionError);
      assert.ok(!err.message.includes("TAIL-NOT-SHOWN"), err.message);
      assert.match(err.message, /x{60}TAIL…"/);
      return true;
    });
  });

  it("normalizeVersion agrees without throwing", () => {
    assert.equal(normalizeVersion(" v1.2.3 "), "1.2.3");
    assert.equal(normalizeVersion("1.2"), undefined);
    assert.equal(normalizeVersion(""), undefined);
  });
});

describe("resolveVersion: value", () => {
  it("parses spec.version.value and says so", async () => {
    const { read, calls } = inputs({});
    assert.deepEqual(await resolveVersion({ value: " v1.4.2 " }, read), { version: "1.4.2", origin: "spec.version.value" });
    assert.deepEqual(calls, []);
  });

  it("fails on an invalid or empty value", async () => {
    const { read } = inputs({});
    await assert.rejects(resolveVersion({ value: "2.x" }, read), invalidVersion(/^spec\.version\.value: "2\.x" is not a semantic version/));
    await assert.rejects(resolveVersion({ value: "" }, read), invalidVersion(/^spec\.version\.value is empty/));
  });

  it("wants exactly one source", async () => {
    const { read } = inputs({});
    await assert.rejects(resolveVersion({}, read), invalidVersion(/exactly one of value, fromObject or fromArtifact/));
    await assert.rejects(
      resolveVersion({ value: "1.0.0", fromArtifact: { stage: "app", path: "VERSION" } }, read),
      invalidVersion(/exactly one of value, fromObject or fromArtifact/),
    );
  });
});

describe("resolveVersion: fromObject", () => {
  it("reads the app.kubernetes.io/version label of the named object of the stage's render", async () => {
    const { read, calls } = inputs({ app: [meta, web], db: [obj("apps/v1", "Deployment", "web", { labels: { "app.kubernetes.io/version": "9.9.9" } })] });
    const resolved = await resolveVersion({ fromObject: { stage: "app", kind: "Deployment", name: "web" } }, read);
    assert.deepEqual(resolved, {
      version: "2.1.0",
      origin: 'label app.kubernetes.io/version of apps/v1 Deployment team-a/web in stage "app"',
    });
    assert.deepEqual(calls, ["objectsOf app"]);
  });

  it("says what the stage renders of that kind when the object is not there", async () => {
    const other = obj("apps/v1", "Deployment", "api");
    const { read } = inputs({ app: [other, meta], empty: [] });
    await assert.rejects(
      resolveVersion({ fromObject: { stage: "app", kind: "Deployment", name: "web" } }, read),
      invalidVersion(/^spec\.version\.fromObject: stage "app" renders no Deployment named "web"; of that kind it renders apps\/v1 Deployment api;/),
    );
    await assert.rejects(
      resolveVersion({ fromObject: { stage: "app", kind: "StatefulSet", name: "web" } }, read),
      invalidVersion(/renders no StatefulSet named "web"; it renders no StatefulSet at all/),
    );
    await assert.rejects(
      resolveVersion({ fromObject: { stage: "empty", kind: "Deployment", name: "web" } }, read),
      invalidVersion(/stage "empty" renders no Deployment named "web"/),
    );
  });

  it("lists at most ten objects of the kind", async () => {
    const many = Array.from({ length: 13 }, (_, i) => obj("v1", "ConfigMap", `cm-${i}`));
    const { read } = inputs({ app: many });
    await assert.rejects(resolveVersion({ fromObject: { stage: "app", kind: "ConfigMap", name: "web" } }, read), (err: unknown) => {
      assert.ok(err instanceof InvalidVersionError);
      assert.match(err.message, /cm-9 and 3 more/);
      assert.ok(!err.message.includes("cm-10"));
      return true;
    });
  });

  it("points at apiVersion when the name exists under another one", async () => {
    const { read } = inputs({ app: [web] });
    await assert.rejects(
      resolveVersion({ fromObject: { stage: "app", apiVersion: "apps/v1beta1", kind: "Deployment", name: "web" } }, read),
      invalidVersion(/renders no apps\/v1beta1 Deployment named "web"; it renders apps\/v1 Deployment team-a\/web; set spec\.version\.fromObject\.apiVersion to apps\/v1/),
    );
  });

  it("refuses an ambiguous kind and name without apiVersion, and takes apiVersion to pick one", async () => {
    const custom = obj("example.com/v1", "Deployment", "web", { labels: { "app.kubernetes.io/version": "7.0.0" } });
    const { read } = inputs({ app: [web, custom] });
    await assert.rejects(
      resolveVersion({ fromObject: { stage: "app", kind: "Deployment", name: "web" } }, read),
      invalidVersion(
        /stage "app" renders 2 objects that match Deployment named "web" \(apps\/v1 Deployment team-a\/web, example\.com\/v1 Deployment web\)/,
        /set spec\.version\.fromObject\.apiVersion to pick one$/,
      ),
    );
    const picked = await resolveVersion({ fromObject: { stage: "app", apiVersion: "example.com/v1", kind: "Deployment", name: "web" } }, read);
    assert.deepEqual(picked, { version: "7.0.0", origin: 'label app.kubernetes.io/version of example.com/v1 Deployment web in stage "app"' });
  });

  it("refuses the same kind and name in two namespaces, which apiVersion cannot separate", async () => {
    const twin = obj("apps/v1", "Deployment", "web", { namespace: "team-b", labels: { "app.kubernetes.io/version": "1.0.0" } });
    const { read } = inputs({ app: [web, twin] });
    for (const apiVersion of [undefined, "apps/v1"]) {
      await assert.rejects(
        resolveVersion({ fromObject: { stage: "app", kind: "Deployment", name: "web", ...(apiVersion ? { apiVersion } : {}) } }, read),
        invalidVersion(/renders 2 objects that match/, /differ only by namespace/),
      );
    }
  });

  it("fails when the label is missing, pointing at the label and fieldPath", async () => {
    const bare = obj("apps/v1", "Deployment", "web");
    const { read } = inputs({ app: [bare] });
    await assert.rejects(
      resolveVersion({ fromObject: { stage: "app", kind: "Deployment", name: "web" } }, read),
      invalidVersion(/^spec\.version\.fromObject: apps\/v1 Deployment web in stage "app" has no label app\.kubernetes\.io\/version; add the label/, /fieldPath/),
    );
  });

  it("fails on an invalid label value, naming the label and the object", async () => {
    const bad = obj("apps/v1", "Deployment", "web", { labels: { "app.kubernetes.io/version": "latest" } });
    const { read } = inputs({ app: [bad] });
    await assert.rejects(
      resolveVersion({ fromObject: { stage: "app", kind: "Deployment", name: "web" } }, read),
      invalidVersion(/^spec\.version\.fromObject \(label app\.kubernetes\.io\/version of apps\/v1 Deployment web in stage "app"\): "latest" is not a semantic version/),
    );
  });

  it("reads fieldPath in kubectl's forms: braces or not, $, escaped dots, quoted keys, indices", async () => {
    const cases: Array<[string, string]> = [
      ["{.data.version}", "3.0.0-rc.1"],
      [".data.version", "3.0.0-rc.1"],
      ["$.data.version", "3.0.0-rc.1"],
      ["{$.data.version}", "3.0.0-rc.1"],
      ["  { .data.version }  ", "3.0.0-rc.1"],
      ["{.data['version']}", "3.0.0-rc.1"],
      ['{.data["version"]}', "3.0.0-rc.1"],
      ["{.data.nested.version}", "1.0.0"],
      ["{.data.dotted\\.key}", "4.5.6"],
      ["{.data['dotted\\.key']}", "4.5.6"],
      ["{.data['dotted.key']}", "4.5.6"],
      ["{.metadata.labels['app\\.kubernetes\\.io/version']}", "2.1.0"],
      ["{.metadata.labels.app\\.kubernetes\\.io/version}", "2.1.0"],
      ['{.metadata.labels["app.kubernetes.io/version"]}', "2.1.0"],
      ["{.spec.template.spec.containers[0].env[1].value}", "2.1.0"],
      ["{.spec.template.spec.containers[1].env[0].value}", "1.0.0"],
      ["{.spec.template.spec.containers[-1].env[0].value}", "1.0.0"],
      ["{.spec.template.spec.containers[-2].env[-1].value}", "2.1.0"],
      ["{.spec.template.spec.containers[1:].env[0].value}", "1.0.0"],
      ["{.spec.template.spec.containers[0:1].env[1].value}", "2.1.0"],
    ];
    for (const [path, version] of cases) {
      const resolved = await fieldPath(path);
      assert.equal(resolved.version, version, path);
    }
    const resolved = await fieldPath("{.data.version}");
    assert.equal(resolved.origin, 'field {.data.version} of v1 ConfigMap app-meta in stage "app"');
  });

  it("refuses a fieldPath that selects several values", async () => {
    for (const [path, count] of [
      ["{.spec.template.spec.containers[*].env[0].value}", 2],
      ["{.spec.template.spec.containers[*].name}", 2],
      ["{..containers[*].image}", 2],
      ["{.metadata.labels.*}", 2],
    ] as const) {
      await assert.rejects(fieldPath(path), invalidVersion(new RegExp(`^spec\\.version\\.fromObject\\.fieldPath: ".*" selects ${count} values in apps/v1 Deployment team-a/web in stage "app"; it must select exactly one`)), path);
    }
  });

  it("takes a recursive descent that selects exactly one value", async () => {
    assert.equal((await fieldPath("{..nested.version}")).version, "1.0.0");
    await assert.rejects(fieldPath("{.data..version}"), invalidVersion(/selects 2 values/));
  });

  it("refuses a fieldPath that selects nothing", async () => {
    for (const path of ["{.data.missing}", "{.spec.template.spec.containers[5].name}", "{.metadata.labels['app.kubernetes.io/missing']}", "{.data.version.deeper}"]) {
      await assert.rejects(fieldPath(path), invalidVersion(/^spec\.version\.fromObject\.fieldPath: ".*" selects nothing in .*; point it at the field that holds the version/), path);
    }
  });

  it("refuses a fieldPath that selects an object, a list, a boolean or null; stringifies a number", async () => {
    await assert.rejects(fieldPath("{.data.nested}"), invalidVersion(/selects an object in v1 ConfigMap app-meta in stage "app", not a version string/));
    await assert.rejects(fieldPath("{.data.list}"), invalidVersion(/selects a list in/));
    await assert.rejects(fieldPath("{.data.flag}"), invalidVersion(/selects a boolean in/));
    await assert.rejects(fieldPath("{.data.nothing}"), invalidVersion(/selects null in/));
    await assert.rejects(fieldPath("{.data.build}"), invalidVersion(/^spec\.version\.fromObject \(field \{\.data\.build\} of v1 ConfigMap app-meta in stage "app"\): "42" is not a semantic version/));
  });

  it("refuses a malformed fieldPath, naming spec.version.fromObject.fieldPath", async () => {
    for (const [path, why] of [
      ["{.data[}", /without its '\]'/],
      ["{.data.version} extra", /one \{\.\.\.\} expression with nothing around it/],
      ["v{.data.version}", /one \{\.\.\.\} expression/],
      ["{.a}{.b}", /one \{\.\.\.\} expression/],
      ["{range .items[*]}{.x}{end}", /one \{\.\.\.\} expression/],
      ["{range .items[*]}", /range\/end/],
      ['{"text"}', /literal text/],
      ["data.version", /must start with '\.', '\$' or '\[' \(kubectl JSONPath\); write \{\.data\.version\}/],
      ["{.spec.containers[?(@.name==\"web\")].image}", /filter expression/],
      ["{.data['a','b']}", /union/],
      ["{.data[0,1]}", /union/],
      ["{.data.}", /ends with a dot/],
      ["{.data..}", /ends with '\.\.'|ends with a dot/],
      ["{}", /is empty/],
      ["", /is empty/],
      ["{$}", /selects the whole object/],
      ["{.data[abc]}", /not an index, a slice, \* or a quoted key/],
      ["{.data['']}", /empty key/],
      ["{.data['x]}", /without its '\]'|closing/],
      ["{.data[0:3:0]}", /step that is not positive/],
      ["{.data[0:0]}", /selects nothing/],
      ["{.data.a;b}", /reserved/],
      ["{.data['a^b']}", /reserved/],
      ["{.data\\}", /lone backslash|one \{\.\.\.\}/],
      ["{.data@x}", /unexpected "@"/],
    ] as const) {
      await assert.rejects(fieldPath(path), invalidVersion(/^spec\.version\.fromObject\.fieldPath: /, why), path);
    }
  });

  it("does not show a value read from a Secret", async () => {
    const secret = obj("v1", "Secret", "creds", { stringData: { password: "hunter2-secret" }, labels: { "app.kubernetes.io/version": "s3cr3t-label" } });
    const { read } = inputs({ app: [secret] });
    await assert.rejects(
      resolveVersion({ fromObject: { stage: "app", kind: "Secret", name: "creds", fieldPath: "{.stringData.password}" } }, read),
      (err: unknown) => {
        invalidVersion(/the value \(not shown: it comes from a Secret\) is not a semantic version/)(err);
        assert.ok(!(err as Error).message.includes("hunter2"));
        return true;
      },
    );
    await assert.rejects(resolveVersion({ fromObject: { stage: "app", kind: "Secret", name: "creds" } }, read), (err: unknown) => {
      assert.ok(!(err as Error).message.includes("s3cr3t"));
      return true;
    });
  });

  it("lets an error of the render pass through", async () => {
    const boom = new Error("build failed");
    const read: VersionInputs = { objectsOf: async () => Promise.reject(boom), readArtifactFile: async () => undefined };
    await assert.rejects(resolveVersion({ fromObject: { stage: "app", kind: "Deployment", name: "web" } }, read), (err) => err === boom);
  });
});

describe("kubectl fieldPath translation", () => {
  it("parses into segments and writes the canonical jsonpath-plus form", () => {
    const segments = parseFieldPath("{.metadata.labels['app\\.kubernetes\\.io/version']}");
    assert.deepEqual(segments, [
      { kind: "key", key: "metadata" },
      { kind: "key", key: "labels" },
      { kind: "key", key: "app.kubernetes.io/version" },
    ]);
    assert.equal(toJsonPathPlus(segments), "$['`metadata']['`labels']['`app.kubernetes.io/version']");
    assert.equal(toJsonPathPlus(parseFieldPath("{..a[*][-1][2][1:3:2].*}")), "$..['`a'][*][-1:][2][1:3:2][*]");
    assert.equal(toJsonPathPlus(parseFieldPath("[-3].x")), "$[-3:-2]['`x']");
    assert.throws(() => parseFieldPath("{.a[?(@.x)]}"), FieldPathSyntaxError);
  });

  it("reads a key holding any character but the reserved ones literally, never as JSONPath syntax", () => {
    const reserved = new Set([";", "[", "]", "^", "%", "@", "'"]);
    for (let code = 32; code < 127; code++) {
      const c = String.fromCharCode(code);
      for (const key of [`a${c}b`, c, `${c}${c}`, `${c}b`, `a${c}`]) {
        const object = { m: { a: "wrong-a", b: "wrong-b", ab: "wrong-ab", [key]: "hit" } };
        const escaped = key.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
        const expression = `{.m["${escaped}"]}`;
        if ([...key].some((k) => reserved.has(k))) {
          assert.throws(() => evaluateFieldPath(expression, object), FieldPathSyntaxError, JSON.stringify(key));
        } else if (key.includes("{") || key.includes("}")) {
          assert.throws(() => evaluateFieldPath(expression, object), /one \{\.\.\.\} expression/, JSON.stringify(key));
        } else {
          assert.deepEqual(evaluateFieldPath(expression, object), ["hit"], JSON.stringify(key));
        }
      }
    }
  });

  it("never evaluates script", () => {
    assert.throws(() => evaluateFieldPath("{.a[(@.length-1)]}", { a: [1, 2] }), FieldPathSyntaxError);
    assert.throws(() => evaluateFieldPath("{.a[?(@.x=='y')]}", { a: [{ x: "y" }] }), FieldPathSyntaxError);
  });

  it("selects nothing in a scalar or null", () => {
    assert.deepEqual(evaluateFieldPath("{.a}", null), []);
    assert.deepEqual(evaluateFieldPath("{.a}", "text"), []);
  });
});

describe("resolveVersion: fromArtifact", () => {
  it("reads the cleaned path of the stage's artifact, trimmed", async () => {
    const { read, calls } = inputs({}, { app: { VERSION: "v2.1.0\n", "meta/VERSION": "\uFEFF 1.0.0-beta.2 \r\n" } });
    assert.deepEqual(await resolveVersion({ fromArtifact: { stage: "app", path: "./VERSION" } }, read), {
      version: "2.1.0",
      origin: 'file VERSION in the artifact of stage "app"',
    });
    assert.equal((await resolveVersion({ fromArtifact: { stage: "app", path: "meta/../meta/./VERSION" } }, read)).version, "1.0.0-beta.2");
    assert.deepEqual(calls, ["readArtifactFile app VERSION", "readArtifactFile app meta/VERSION"]);
  });

  it("fails when the file is missing, empty or holds more than one version", async () => {
    const { read } = inputs({}, { app: { EMPTY: "\n", TWO: "2.1.0\n2.2.0\n", WORD: "release-2" } });
    await assert.rejects(
      resolveVersion({ fromArtifact: { stage: "app", path: "VERSION" } }, read),
      invalidVersion(/^spec\.version\.fromArtifact\.path: the artifact of stage "app" has no file VERSION; ship a file there/),
    );
    await assert.rejects(resolveVersion({ fromArtifact: { stage: "app", path: "EMPTY" } }, read), invalidVersion(/^spec\.version\.fromArtifact \(file EMPTY in the artifact of stage "app"\) is empty/));
    await assert.rejects(resolveVersion({ fromArtifact: { stage: "app", path: "TWO" } }, read), invalidVersion(/"2\.1\.0\\n2\.2\.0" is not a semantic version/));
    await assert.rejects(resolveVersion({ fromArtifact: { stage: "app", path: "WORD" } }, read), invalidVersion(/"release-2" is not a semantic version/));
  });

  it("refuses an absolute path or one that climbs out of the artifact, without reading", async () => {
    const { read, calls } = inputs({}, { app: { VERSION: "1.0.0" } });
    for (const path of ["../x", "/etc/passwd", "a/../../x", "..", "./../VERSION"]) {
      await assert.rejects(resolveVersion({ fromArtifact: { stage: "app", path } }, read), invalidVersion(/^spec\.version\.fromArtifact\.path: /, /absolute|outside the artifact/), path);
    }
    assert.deepEqual(calls, []);
  });

  it("cleanArtifactPath folds and refuses", () => {
    assert.equal(cleanArtifactPath("./VERSION"), "VERSION");
    assert.equal(cleanArtifactPath("././a//b/./VERSION"), "a/b/VERSION");
    assert.equal(cleanArtifactPath("a/../VERSION"), "VERSION");
    assert.throws(() => cleanArtifactPath(""), invalidVersion(/names a directory/));
    assert.throws(() => cleanArtifactPath("."), invalidVersion(/names a directory/));
    assert.throws(() => cleanArtifactPath("dir/"), invalidVersion(/names a directory/));
    assert.throws(() => cleanArtifactPath("a\0b"), invalidVersion(/NUL/));
  });
});

describe("readArtifactFile", () => {
  let base: string;
  let root: string;
  let outside: string;
  before(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), "stageset-version-")));
    root = join(base, "artifact");
    outside = join(base, "outside");
    await mkdir(join(root, "meta"), { recursive: true });
    await mkdir(outside);
    await writeFile(join(outside, "secret"), "canary-outside\n");
    await writeFile(join(root, "VERSION"), "2.1.0\n");
    await writeFile(join(root, "meta", "VERSION"), "v3.0.0");
    await writeFile(join(root, "FULL"), "1".repeat(MAX_VERSION_FILE_BYTES));
    await writeFile(join(root, "BIG"), "1".repeat(MAX_VERSION_FILE_BYTES + 1));
    await writeFile(join(root, "BINARY"), Buffer.from([0xff, 0xfe, 0x00, 0x31]));
    await symlink("meta/VERSION", join(root, "LINKED"));
    await symlink(join(outside, "secret"), join(root, "ESCAPE"));
    await symlink("../../outside/secret", join(root, "meta", "RELATIVE-ESCAPE"));
    await symlink(outside, join(root, "outdir"));
    await symlink(join(root, "nothing"), join(root, "DANGLING"));
    await symlink("LOOP-B", join(root, "LOOP-A"));
    await symlink("LOOP-A", join(root, "LOOP-B"));
    await symlink(root, join(base, "root-link"));
    execFileSync("mkfifo", [join(root, "FIFO")]);
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const noCanary = (err: unknown) => {
    assert.ok(!(err as Error).message.includes("canary"));
    return true;
  };

  it("reads a file inside the artifact, also through a link that stays inside or a linked root", async () => {
    assert.equal(await readArtifactFile(root, "VERSION"), "2.1.0\n");
    assert.equal(await readArtifactFile(root, "./meta/VERSION"), "v3.0.0");
    assert.equal(await readArtifactFile(root, "LINKED"), "v3.0.0");
    assert.equal(await readArtifactFile(join(base, "root-link"), "VERSION"), "2.1.0\n");
    assert.equal(await readArtifactFile(root, "FULL"), "1".repeat(MAX_VERSION_FILE_BYTES));
  });

  it("returns undefined for a missing file or directory", async () => {
    assert.equal(await readArtifactFile(root, "NOPE"), undefined);
    assert.equal(await readArtifactFile(root, "no/such/dir/VERSION"), undefined);
    assert.equal(await readArtifactFile(root, "VERSION/below-a-file"), undefined);
  });

  it("refuses ../x and /etc/passwd before touching the filesystem", async () => {
    await assert.rejects(readArtifactFile(root, "../outside/secret"), invalidVersion(/^spec\.version\.fromArtifact\.path: .* points outside the artifact/));
    await assert.rejects(readArtifactFile(root, "/etc/passwd"), invalidVersion(/is absolute/));
  });

  it("refuses a symbolic link out of the artifact without reading what it points at", async () => {
    for (const path of ["ESCAPE", "meta/RELATIVE-ESCAPE", "outdir/secret"]) {
      await assert.rejects(readArtifactFile(root, path), invalidVersion(/resolves outside the artifact through a symbolic link/), path);
      await assert.rejects(readArtifactFile(root, path), noCanary);
    }
  });

  it("refuses a dangling link, a link loop and a directory", async () => {
    await assert.rejects(readArtifactFile(root, "DANGLING"), invalidVersion(/DANGLING is a symbolic link to nothing/));
    await assert.rejects(readArtifactFile(root, "LOOP-A"), invalidVersion(/loop of symbolic links/));
    await assert.rejects(readArtifactFile(root, "meta"), invalidVersion(/meta is not a regular file/));
  });

  it("refuses a FIFO without hanging on its open", { timeout: 10_000 }, async () => {
    await assert.rejects(readArtifactFile(root, "FIFO"), invalidVersion(/FIFO is not a regular file/));
  });

  it("refuses a file over 4 KiB as not a version file, and one that is not UTF-8", async () => {
    await assert.rejects(readArtifactFile(root, "BIG"), invalidVersion(/BIG is not a version file \(4097 bytes, more than 4096\)/));
    await assert.rejects(readArtifactFile(root, "BINARY"), invalidVersion(/BINARY is not UTF-8 text/));
  });

  it("serves resolveVersion through VersionInputs", async () => {
    const read: VersionInputs = { objectsOf: async () => [], readArtifactFile: (_stage, path) => readArtifactFile(root, path) };
    const spec: VersionSpec = { fromArtifact: { stage: "app", path: "./meta/VERSION" } };
    assert.deepEqual(await resolveVersion(spec, read), { version: "3.0.0", origin: 'file meta/VERSION in the artifact of stage "app"' });
    await assert.rejects(resolveVersion({ fromArtifact: { stage: "app", path: "ESCAPE" } }, read), invalidVersion(/outside the artifact/));
  });
});

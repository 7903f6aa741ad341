import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../../../src/cli/errors.js";
import { assertStagesKnown, parseSourceDirs, sourceDirFor } from "../../../src/cli/source-dirs.js";

test("STAGE=PATH maps one stage, a bare PATH feeds every other stage", () => {
  const dirs = parseSourceDirs(["./checkout", "infrastructure=./infra"], "/work");
  assert.equal(sourceDirFor(dirs, "infrastructure"), "/work/infra");
  assert.equal(sourceDirFor(dirs, "application"), "/work/checkout");
  assert.equal(sourceDirFor(parseSourceDirs([], "/work"), "application"), undefined);
});

test("a path with = whose prefix is not a stage name stays a bare path", () => {
  const dirs = parseSourceDirs(["./a=b/c"], "/w");
  assert.equal(dirs.byStage.size, 0);
  assert.equal(dirs.fallback, "/w/a=b/c");
  assert.equal(parseSourceDirs(["/abs/x=y"], "/w").fallback, "/abs/x=y");
  assert.throws(() => parseSourceDirs(["./a=b", "./c"], "/w"), /only one bare PATH/);
});

test("mistakes are usage errors that say what to type", () => {
  assert.throws(() => parseSourceDirs(["./a", "./b"]), (err: unknown) => err instanceof UsageError && /--source-dir app=\.\/b/.test(err.message));
  assert.throws(() => parseSourceDirs(["app=./a", "app=./b"]), /names stage "app" twice/);
  assert.throws(() => parseSourceDirs(["app="]), /--source-dir app=PATH/);
  assert.throws(() => assertStagesKnown(parseSourceDirs(["apps=./a"]), ["app", "infra"]), /no stage "apps"; use one of: app, infra/);
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { Stage, StageSetSpec } from "../../../src/api/types.js";
import { InvalidSpecError } from "../../../src/errors.js";
import { resolveStageTimeout } from "../../../src/health/index.js";

function setup(specTimeout: string | undefined, stage: Partial<Stage>): { spec: StageSetSpec; stage: Stage } {
  const other: Stage = { name: "first", sourceRef: { name: "src" } };
  const target: Stage = { name: "app", sourceRef: { name: "src" }, ...stage };
  const spec: StageSetSpec = { stages: [other, target], ...(specTimeout === undefined ? {} : { timeout: specTimeout }) };
  return { spec, stage: target };
}

describe("resolveStageTimeout", () => {
  it("defaults to 15m", () => {
    const { spec, stage } = setup(undefined, {});
    assert.equal(resolveStageTimeout(spec, stage), 15 * 60_000);
  });

  it("uses spec.timeout", () => {
    const { spec, stage } = setup("20m", {});
    assert.equal(resolveStageTimeout(spec, stage), 20 * 60_000);
  });

  it("stages[].timeout overrides spec.timeout", () => {
    const { spec, stage } = setup("20m", { timeout: "1h30m" });
    assert.equal(resolveStageTimeout(spec, stage), 90 * 60_000);
  });

  it("stages[].readyChecks.timeout is the most specific and wins", () => {
    const { spec, stage } = setup("20m", { timeout: "1h", readyChecks: { timeout: "90s" } });
    assert.equal(resolveStageTimeout(spec, stage), 90_000);
  });

  it("a readyChecks block without timeout falls through to the stage", () => {
    const { spec, stage } = setup("20m", { timeout: "2m", readyChecks: { disableWait: false } });
    assert.equal(resolveStageTimeout(spec, stage), 120_000);
  });

  it("an invalid duration is an InvalidSpec error naming the field", () => {
    const { spec, stage } = setup(undefined, { readyChecks: { timeout: "5 minutes" } });
    assert.throws(
      () => resolveStageTimeout(spec, stage),
      (err: unknown) => err instanceof InvalidSpecError && err.message.startsWith('spec.stages[1].readyChecks.timeout: "5 minutes"'),
    );
    const bad = setup("soon", {});
    assert.throws(() => resolveStageTimeout(bad.spec, bad.stage), /spec\.timeout: "soon"/);
  });
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { applyOutcome, setCondition, withRunbook } from "../../../src/controller/conditions.js";
import { Reasons } from "../../../src/errors.js";

const t0 = () => new Date("2026-01-01T00:00:00.000Z");
const t1 = () => new Date("2026-01-01T01:00:00.000Z");

test("runbook link is appended to actionable reasons only", () => {
  assert.equal(
    withRunbook('stage "app" failed', Reasons.StageFailed, "https://rb.example/stageset"),
    'stage "app" failed (runbook: https://rb.example/stageset/stagefailed/)',
  );
  assert.equal(withRunbook("ok", Reasons.Succeeded, "https://rb.example"), "ok");
  assert.equal(withRunbook("held", Reasons.Suspended, "https://rb.example"), "held");
  assert.equal(withRunbook("x", Reasons.StageFailed, ""), "x");
});

test("lastTransitionTime only moves when the status changes", () => {
  const a = setCondition([], { type: "Ready", status: "False", reason: "Progressing", message: "m" }, t0);
  const b = setCondition(a, { type: "Ready", status: "False", reason: "StageFailed", message: "n" }, t1);
  assert.equal(b[0]?.lastTransitionTime, "2026-01-01T00:00:00Z");
  assert.equal(b[0]?.reason, "StageFailed");
  const c = setCondition(b, { type: "Ready", status: "True", reason: "Succeeded", message: "ok" }, t1);
  assert.equal(c[0]?.lastTransitionTime, "2026-01-01T01:00:00Z");
});

test("outcomes map to the kstatus trio", () => {
  const failed = applyOutcome([], { ready: "False", reason: Reasons.StageFailed, message: "bad", stalled: true }, 3, "", t0);
  assert.deepEqual(
    failed.map((c) => [c.type, c.status]),
    [
      ["Ready", "False"],
      ["Stalled", "True"],
    ],
  );
  const progressing = applyOutcome(failed, { ready: "Unknown", reason: Reasons.Progressing, message: "go", reconciling: true }, 4, "", t0);
  assert.deepEqual(
    progressing.map((c) => [c.type, c.status, c.observedGeneration]),
    [
      ["Ready", "Unknown", 4],
      ["Reconciling", "True", 4],
    ],
  );
  const done = applyOutcome(progressing, { ready: "True", reason: Reasons.Succeeded, message: "ok" }, 4, "", t0);
  assert.deepEqual(done.map((c) => c.type), ["Ready"]);
});

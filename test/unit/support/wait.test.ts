import assert from "node:assert/strict";
import { test } from "node:test";
import { freePorts } from "../../support/controlplane/ports.js";
import { waitFor, WaitTimeoutError } from "../../support/wait.js";

test("waitFor returns the first truthy probe value, treating throws as not yet", async () => {
  let calls = 0;
  const value = await waitFor(
    () => {
      calls++;
      if (calls === 1) throw new Error("not up");
      return calls === 3 ? "ready" : undefined;
    },
    { description: "thing", timeoutMs: 5000, intervalMs: 1 },
  );
  assert.equal(value, "ready");
  assert.equal(calls, 3);
});

test("waitFor times out naming what it waited for and the last error", async () => {
  await assert.rejects(
    waitFor(
      () => {
        throw new Error("connection refused");
      },
      { description: "kube-apiserver /readyz", timeoutMs: 30, intervalMs: 5 },
    ),
    (err: unknown) =>
      err instanceof WaitTimeoutError &&
      /timed out after 30ms waiting for kube-apiserver \/readyz/.test(err.message) &&
      /connection refused/.test(err.message),
  );
});

test("waitFor gives up at once when abortIf reports a reason", async () => {
  await assert.rejects(
    waitFor(() => false, { description: "etcd", timeoutMs: 60_000, abortIf: () => "etcd exited with code 1" }),
    /gave up waiting for etcd: etcd exited with code 1/,
  );
});

test("freePorts returns distinct bindable ports", async () => {
  const ports = await freePorts(5);
  assert.equal(new Set(ports).size, 5);
  for (const port of ports) assert.ok(port > 0 && port < 65536);
});

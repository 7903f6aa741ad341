import assert from "node:assert/strict";
import { test } from "node:test";
import type { KubeObject, Stage } from "../../../src/api/types.js";
import { BuildCache } from "../../../src/controller/build-cache.js";

const stage: Stage = { name: "app", sourceRef: { name: "a" }, postBuild: { substituteFrom: [{ kind: "ConfigMap", name: "vars" }] } };

function source(data: Record<string, string>) {
  return {
    data,
    getConfigMap: async () => ({ data }),
    getSecret: async () => undefined,
  };
}

test("an unchanged artifact, spec and variables reuse the render; a changed variable renders again", async () => {
  const cache = new BuildCache();
  let renders = 0;
  const render = async (vars: { getConfigMap(ns: string, n: string): Promise<{ data?: Record<string, string> } | undefined> }): Promise<KubeObject[]> => {
    renders++;
    const cm = await vars.getConfigMap("ns", "vars");
    return [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" }, data: { v: cm?.data?.v ?? "" } }];
  };
  const vars = source({ v: "1" });
  const first = await cache.build("sha256:aa", stage, "ns", vars, render);
  first[0]!.metadata.name = "mutated-by-caller";
  const second = await cache.build("sha256:aa", stage, "ns", vars, render);
  assert.equal(renders, 1);
  assert.equal(second[0]!.metadata.name, "x", "callers get their own copy");

  vars.data.v = "2";
  const third = await cache.build("sha256:aa", stage, "ns", vars, render);
  assert.equal(renders, 2);
  assert.deepEqual(third[0]!.data, { v: "2" });

  await cache.build("sha256:bb", stage, "ns", vars, render);
  assert.equal(renders, 3, "a new digest renders again");
  await cache.build("sha256:bb", { ...stage, path: "./other" }, "ns", vars, render);
  assert.equal(renders, 4, "a changed stage spec renders again");
});

test("the cache is bounded", async () => {
  const cache = new BuildCache(2);
  let renders = 0;
  const render = async () => {
    renders++;
    return [];
  };
  const vars = source({});
  for (const d of ["a", "b", "c", "a"]) await cache.build(`sha256:${d}`, { name: "s", sourceRef: { name: "x" } }, "ns", vars, render);
  assert.equal(renders, 4, "the oldest entry was evicted");
});

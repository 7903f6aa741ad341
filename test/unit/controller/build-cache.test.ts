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

test("at most maxConcurrentRenders renders run at once; the others start in arrival order as slots free, also after a failed render", async () => {
  const cache = new BuildCache(64, 2);
  const started: string[] = [];
  const finish = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
  const render = (digest: string) => () =>
    new Promise<KubeObject[]>((resolve, reject) => {
      started.push(digest);
      finish.set(digest, { resolve: () => resolve([]), reject });
    });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const vars = source({});
  const builds = ["a", "b", "c", "d"].map((d) => cache.build(`sha256:${d}`, stage, "ns", vars, render(d)).then(() => d, (err: Error) => `${d}: ${err.message}`));
  await settle();
  assert.deepEqual(started, ["a", "b"]);
  assert.equal(cache.rendering, 2);

  finish.get("b")!.reject(new Error("kustomize failed"));
  await settle();
  assert.deepEqual(started, ["a", "b", "c"], "a failed render frees its slot for the next in line");

  finish.get("a")!.resolve();
  await settle();
  assert.deepEqual(started, ["a", "b", "c", "d"]);
  finish.get("c")!.resolve();
  finish.get("d")!.resolve();
  assert.deepEqual(await Promise.all(builds), ["a", "b: kustomize failed", "c", "d"]);
  assert.equal(cache.rendering, 0);
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject, SourceRef } from "../../../src/api/types.js";
import { ArtifactError, InvalidSpecError, SourceNotReadyError } from "../../../src/errors.js";
import {
  ANY_GROUP,
  producerIndexKeys,
  producerKey,
  resolveSource,
  type ResolveOptions,
  type SourceReader,
} from "../../../src/source/resolve.js";

const FLUX_V1 = "source.toolkit.fluxcd.io/v1";
const DIGEST = "sha256:35d47c9db0eee6ffe08a404dfb416bee31b2b79eabc3f2eb26749163ce487f52";

function artifactStatus(url: string, revision: string) {
  return {
    artifact: { url, revision, digest: DIGEST, size: 20914, lastUpdateTime: "2025-08-21T13:37:31Z", path: "x.tar.gz" },
    conditions: [
      { type: "Ready", status: "True", reason: "Succeeded", message: "stored artifact", lastTransitionTime: "2025-08-21T13:37:31Z" },
    ],
  };
}

function source(kind: string, namespace: string, name: string, extra: Partial<KubeObject> = {}): KubeObject {
  return {
    apiVersion: FLUX_V1,
    kind,
    metadata: { namespace, name, generation: 1 },
    status: artifactStatus(`http://source-controller/${kind}/${namespace}/${name}.tar.gz`, `main@sha1:${name}`),
    ...extra,
  };
}

function externalArtifact(namespace: string, name: string, sourceRef: Record<string, string> | undefined): KubeObject {
  return { ...source("ExternalArtifact", namespace, name), spec: sourceRef ? { sourceRef } : {} };
}

/** The SourceReader the controller builds from its cache, over a plain list of objects. */
function readerOf(objects: KubeObject[]): SourceReader & { gets: string[] } {
  const index = new Map<string, KubeObject[]>();
  for (const object of objects.filter((o) => o.kind === "ExternalArtifact")) {
    for (const key of producerIndexKeys(object)) index.set(key, [...(index.get(key) ?? []), object]);
  }
  const gets: string[] = [];
  return {
    gets,
    async get(apiVersion, kind, namespace, name) {
      gets.push(`${apiVersion} ${kind} ${namespace}/${name}`);
      return objects.find(
        (o) => o.apiVersion === apiVersion && o.kind === kind && o.metadata.namespace === namespace && o.metadata.name === name,
      );
    },
    producersOf(group, kind, namespace, name) {
      return index.get(producerKey(group, kind, namespace, name)) ?? [];
    },
  };
}

function resolve(sourceRef: SourceRef, reader: SourceReader, options: ResolveOptions = {}) {
  return resolveSource({ sourceRef, namespace: "apps", stage: "web", field: "spec.stages[1].sourceRef" }, reader, options);
}

describe("resolveSource: direct kinds", () => {
  it("defaults to an ExternalArtifact in the StageSet's namespace, source.toolkit.fluxcd.io/v1", async () => {
    const reader = readerOf([source("ExternalArtifact", "apps", "my-app")]);
    const resolved = await resolve({ name: "my-app" }, reader);
    assert.deepEqual(resolved.ref, { apiVersion: FLUX_V1, kind: "ExternalArtifact", namespace: "apps", name: "my-app" });
    assert.equal(resolved.key, "apps/my-app");
    assert.deepEqual(resolved.artifactFrom, resolved.ref);
    assert.deepEqual(resolved.artifact, {
      url: "http://source-controller/ExternalArtifact/apps/my-app.tar.gz",
      revision: "main@sha1:my-app",
      digest: DIGEST,
      size: 20914,
      lastUpdateTime: "2025-08-21T13:37:31Z",
    });
  });

  for (const kind of ["GitRepository", "OCIRepository", "Bucket"]) {
    it(`reads a ${kind} directly`, async () => {
      const reader = readerOf([source(kind, "apps", "manifests")]);
      const resolved = await resolve({ kind, name: "manifests" }, reader);
      assert.equal(resolved.ref.kind, kind);
      assert.equal(resolved.artifact.revision, "main@sha1:manifests");
      assert.deepEqual(reader.gets, [`${FLUX_V1} ${kind} apps/manifests`]);
    });
  }

  it("keeps an explicit source.toolkit.fluxcd.io apiVersion", async () => {
    const reader = readerOf([{ ...source("GitRepository", "apps", "m"), apiVersion: "source.toolkit.fluxcd.io/v1beta2" }]);
    const resolved = await resolve({ apiVersion: "source.toolkit.fluxcd.io/v1beta2", kind: "GitRepository", name: "m" }, reader);
    assert.equal(resolved.ref.apiVersion, "source.toolkit.fluxcd.io/v1beta2");
  });

  it("holds with SourceNotReady when the source does not exist", async () => {
    await assert.rejects(
      resolve({ kind: "GitRepository", name: "missing" }, readerOf([])),
      (err: unknown) =>
        err instanceof SourceNotReadyError &&
        err.reason === "SourceNotReady" &&
        err.message === 'stage "web": source GitRepository apps/missing not found',
    );
  });

  it("holds with SourceNotReady when the source is not Ready, quoting its condition", async () => {
    const failing = source("GitRepository", "apps", "m");
    (failing.status as { conditions: unknown[] }).conditions = [
      { type: "Ready", status: "False", reason: "GitOperationFailed", message: "auth failed", lastTransitionTime: "t" },
    ];
    await assert.rejects(
      resolve({ kind: "GitRepository", name: "m" }, readerOf([failing])),
      (err: unknown) =>
        err instanceof SourceNotReadyError &&
        err.message === 'stage "web": source GitRepository apps/m is not Ready (GitOperationFailed: auth failed)',
    );
  });

  it("holds while the source has no Ready condition or reconciles a newer generation", async () => {
    const fresh = source("ExternalArtifact", "apps", "a");
    (fresh.status as { conditions: unknown[] }).conditions = [];
    await assert.rejects(resolve({ name: "a" }, readerOf([fresh])), /has no Ready condition yet/);

    const stale = source("ExternalArtifact", "apps", "a");
    stale.metadata.generation = 3;
    (stale.status as { conditions: { observedGeneration?: number }[] }).conditions[0]!.observedGeneration = 2;
    await assert.rejects(resolve({ name: "a" }, readerOf([stale])), (err: unknown) =>
      err instanceof SourceNotReadyError && /still reconciling generation 3/.test(err.message),
    );
  });

  it("holds with SourceNotReady when the source has no artifact yet", async () => {
    const empty = source("OCIRepository", "apps", "oci");
    delete (empty.status as { artifact?: unknown }).artifact;
    await assert.rejects(
      resolve({ kind: "OCIRepository", name: "oci" }, readerOf([empty])),
      (err: unknown) => err instanceof SourceNotReadyError && /OCIRepository apps\/oci has no artifact yet/.test(err.message),
    );
  });

  it("fails with ArtifactFailed when the artifact lacks the fields to fetch and verify it", async () => {
    const partial = source("ExternalArtifact", "apps", "a");
    delete (partial.status as { artifact: { digest?: string } }).artifact.digest;
    await assert.rejects(
      resolve({ name: "a" }, readerOf([partial])),
      (err: unknown) => err instanceof ArtifactError && /status\.artifact\.digest/.test(err.message),
    );
  });
});

describe("resolveSource: namespaces", () => {
  const other = source("ExternalArtifact", "shared", "platform");

  it("follows a cross-namespace reference by default", async () => {
    const resolved = await resolve({ name: "platform", namespace: "shared" }, readerOf([other]));
    assert.equal(resolved.key, "shared/platform");
  });

  it("refuses a cross-namespace reference under --no-cross-namespace-refs, naming the field and the fix", async () => {
    await assert.rejects(
      resolve({ name: "platform", namespace: "shared" }, readerOf([other]), { noCrossNamespaceRefs: true }),
      (err: unknown) =>
        err instanceof InvalidSpecError &&
        err.terminal &&
        err.message.startsWith("spec.stages[1].sourceRef.namespace:") &&
        /--no-cross-namespace-refs/.test(err.message) &&
        /remove spec\.stages\[1\]\.sourceRef\.namespace/.test(err.message),
    );
  });

  it("accepts an explicit reference to its own namespace under --no-cross-namespace-refs", async () => {
    const resolved = await resolve(
      { name: "my-app", namespace: "apps" },
      readerOf([source("ExternalArtifact", "apps", "my-app")]),
      { noCrossNamespaceRefs: true },
    );
    assert.equal(resolved.key, "apps/my-app");
  });
});

describe("resolveSource: producers", () => {
  const snippetRef = { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "web" };

  it("resolves a producer to the ExternalArtifact whose sourceRef points back at it", async () => {
    const published = externalArtifact("apps", "web-rendered", { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "web" });
    const resolved = await resolve(snippetRef, readerOf([published]));
    assert.deepEqual(resolved.ref, { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", namespace: "apps", name: "web" });
    assert.equal(resolved.key, "apps/web");
    assert.deepEqual(resolved.artifactFrom, { apiVersion: FLUX_V1, kind: "ExternalArtifact", namespace: "apps", name: "web-rendered" });
    assert.equal(resolved.artifact.revision, "main@sha1:web-rendered");
  });

  it("matches on group, kind, name and namespace, whatever the version", async () => {
    const decoys = [
      externalArtifact("apps", "other-group", { apiVersion: "example.com/v1", kind: "JsonnetSnippet", name: "web" }),
      externalArtifact("apps", "other-kind", { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetLibrary", name: "web" }),
      externalArtifact("apps", "other-name", { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "api" }),
      externalArtifact("team-b", "other-namespace", { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "web" }),
    ];
    await assert.rejects(resolve(snippetRef, readerOf(decoys)), (err: unknown) =>
      err instanceof SourceNotReadyError &&
      err.message.startsWith('stage "web": no ExternalArtifact in namespace apps points back at producer JsonnetSnippet.jaas.metio.wtf apps/web'),
    );
    const published = externalArtifact("apps", "the-one", { apiVersion: "jaas.metio.wtf/v1beta1", kind: "JsonnetSnippet", name: "web" });
    const resolved = await resolve(snippetRef, readerOf([...decoys, published]));
    assert.equal(resolved.artifactFrom.name, "the-one");
  });

  it("does not let an ExternalArtifact claim a producer in another namespace", () => {
    const hijack = externalArtifact("team-b", "hijack", { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "web", namespace: "apps" });
    assert.deepEqual(producerIndexKeys(hijack), []);
    const local = externalArtifact("apps", "ok", { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "web", namespace: "apps" });
    assert.deepEqual(producerIndexKeys(local), [producerKey("jaas.metio.wtf", "JsonnetSnippet", "apps", "web")]);
  });

  it("uses a back-pointer without apiVersion only when no ExternalArtifact names the group", async () => {
    const loose = externalArtifact("apps", "loose", { kind: "JsonnetSnippet", name: "web" });
    assert.deepEqual(producerIndexKeys(loose), [producerKey(ANY_GROUP, "JsonnetSnippet", "apps", "web")]);
    assert.equal((await resolve(snippetRef, readerOf([loose]))).artifactFrom.name, "loose");
    const exact = externalArtifact("apps", "exact", { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "web" });
    assert.equal((await resolve(snippetRef, readerOf([loose, exact]))).artifactFrom.name, "exact");
  });

  it("ignores candidates a loose reader returns that do not point back at the producer", async () => {
    const stray = externalArtifact("apps", "stray", { apiVersion: "example.com/v1", kind: "JsonnetSnippet", name: "web" });
    const reader: SourceReader = { get: async () => undefined, producersOf: () => [stray] };
    await assert.rejects(resolve(snippetRef, reader), SourceNotReadyError);
  });

  it("holds when two ExternalArtifacts claim the same producer, naming both", async () => {
    const ref = { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "web" };
    await assert.rejects(
      resolve(snippetRef, readerOf([externalArtifact("apps", "b", ref), externalArtifact("apps", "a", ref)])),
      (err: unknown) => err instanceof SourceNotReadyError && /claimed by 2 ExternalArtifacts \(a, b\)/.test(err.message),
    );
  });

  it("holds while the producer's ExternalArtifact is not Ready, naming it and the producer", async () => {
    const published = externalArtifact("apps", "web-rendered", { apiVersion: "jaas.metio.wtf/v1", kind: "JsonnetSnippet", name: "web" });
    const ready = (published.status as { conditions: { status: string; reason: string; message: string }[] }).conditions[0]!;
    Object.assign(ready, { status: "Unknown", reason: "Progressing", message: "rendering" });
    await assert.rejects(resolve(snippetRef, readerOf([published])), (err: unknown) =>
      err instanceof SourceNotReadyError &&
      err.message ===
        'stage "web": ExternalArtifact apps/web-rendered (published by JsonnetSnippet.jaas.metio.wtf apps/web) is not Ready (Progressing: rendering)',
    );
  });

  it("requires an apiVersion for a producer kind", async () => {
    await assert.rejects(
      resolve({ kind: "JsonnetSnippet", name: "web" }, readerOf([])),
      (err: unknown) =>
        err instanceof InvalidSpecError && err.message.startsWith('spec.stages[1].sourceRef.apiVersion: stage "web" references producer kind "JsonnetSnippet"'),
    );
  });

  it("treats a Flux kind name in another group as a producer", async () => {
    const published = externalArtifact("apps", "ea", { apiVersion: "example.com/v1", kind: "GitRepository", name: "repo" });
    const reader = readerOf([source("GitRepository", "apps", "repo"), published]);
    const resolved = await resolve({ apiVersion: "example.com/v1", kind: "GitRepository", name: "repo" }, reader);
    assert.equal(resolved.artifactFrom.name, "ea");
    assert.deepEqual(reader.gets, []);
  });

  it("rejects a malformed apiVersion", async () => {
    await assert.rejects(resolve({ apiVersion: "a/b/c", kind: "X", name: "y" }, readerOf([])), InvalidSpecError);
  });

  it("indexes nothing for an ExternalArtifact without a back-pointer", () => {
    assert.deepEqual(producerIndexKeys(externalArtifact("apps", "plain", undefined)), []);
  });
});

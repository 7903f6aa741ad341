// The cluster converges to exactly what was rendered: fields a revision
// removes leave the live object (ownership from managedFields), objects are
// taken over from client-side kubectl apply, other managers' fields are not
// drift; the controller end to end with `stagesetctl diff` before and after.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { applyStage } from "../../src/apply/engine.js";
import { LAST_APPLIED_ANNOTATION } from "../../src/apply/managed-fields.js";
import { runCli } from "../support/cli.js";
import { createTestNamespace } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { readyCondition, getStageSet, STAGESET, usePipelineFixture, waitForEvent, waitForReason } from "../support/pipeline.js";
import { waitFor } from "../support/wait.js";

type Spec = Record<string, unknown>;

function deployment(namespace: string, edit: (podSpec: Spec, spec: Spec) => void = () => {}): KubeObject {
  const podSpec: Spec = {
    containers: [
      {
        name: "worker",
        image: "registry.invalid/worker:1",
        env: [
          { name: "LOG_LEVEL", value: "info" },
          { name: "LEGACY_MODE", value: "on" },
        ],
        ports: [
          { containerPort: 8080, name: "http" },
          { containerPort: 9090, name: "metrics" },
        ],
        volumeMounts: [{ name: "cache", mountPath: "/cache" }],
      },
      { name: "sidecar", image: "registry.invalid/sidecar:1" },
    ],
    tolerations: [
      { key: "dedicated", operator: "Equal", value: "batch", effect: "NoSchedule" },
      { key: "spot", operator: "Exists" },
    ],
    volumes: [
      { name: "cache", emptyDir: {} },
      { name: "scratch", emptyDir: {} },
    ],
  };
  const spec: Spec = {
    replicas: 1,
    paused: true,
    selector: { matchLabels: { app: "worker" } },
    template: { metadata: { labels: { app: "worker" } }, spec: podSpec },
  };
  edit(podSpec, spec);
  return { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "worker", namespace }, spec };
}

function configMap(namespace: string, data: Record<string, string>, labels: Record<string, string>, annotations: Record<string, string>): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace, labels, annotations }, data };
}

function secret(namespace: string, stringData: Record<string, string>): KubeObject {
  return { apiVersion: "v1", kind: "Secret", metadata: { name: "creds", namespace }, stringData };
}

const container = (d: KubeObject, name: string) =>
  ((d.spec as { template: { spec: { containers: Spec[] } } }).template.spec.containers.find((c) => c.name === name) ?? {}) as Spec;

describe("apply correctness", { concurrency: true }, () => {
  const fixture = usePipelineFixture();

  test("every field a revision removes leaves the live object, one revision after another; a no-op stays a no-op", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "removals");
    const client = fixture.client;
    const stageSet = { name: "removals", namespace };
    const apply = (objects: KubeObject[]) => applyStage({ client, stageSet, stage: "app", objects });
    const live = (kind: string, name: string) => client.get({ apiVersion: kind === "Deployment" ? "apps/v1" : "v1", kind, namespace, name }) as Promise<KubeObject>;

    let cm = configMap(namespace, { keep: "1", drop: "2" }, { app: "demo", tier: "gold" }, { owner: "team-a", note: "old" });
    let sec = secret(namespace, { token: "t", legacy: "l" });
    let dep = deployment(namespace);
    await apply([cm, sec, dep]);

    // Each step removes one kind of field and nothing else; the next apply of the same revision writes nothing.
    const steps: { what: string; edit: () => void; gone: () => Promise<boolean> }[] = [
      { what: "a ConfigMap key", edit: () => (cm = configMap(namespace, { keep: "1" }, { app: "demo", tier: "gold" }, { owner: "team-a", note: "old" })), gone: async () => !("drop" in ((await live("ConfigMap", "settings")).data as Spec)) },
      { what: "a label", edit: () => (cm = configMap(namespace, { keep: "1" }, { app: "demo" }, { owner: "team-a", note: "old" })), gone: async () => !("tier" in ((await live("ConfigMap", "settings")).metadata.labels ?? {})) },
      { what: "an annotation", edit: () => (cm = configMap(namespace, { keep: "1" }, { app: "demo" }, { owner: "team-a" })), gone: async () => !("note" in ((await live("ConfigMap", "settings")).metadata.annotations ?? {})) },
      { what: "a Secret stringData key", edit: () => (sec = secret(namespace, { token: "t" })), gone: async () => !("legacy" in ((await live("Secret", "creds")).data as Spec)) },
      {
        what: "an env var",
        edit: () => (dep = deployment(namespace, (p) => (((p.containers as Spec[])[0]!).env = [{ name: "LOG_LEVEL", value: "info" }]))),
        gone: async () => !((container(await live("Deployment", "worker"), "worker").env as Spec[]).some((e) => e.name === "LEGACY_MODE")),
      },
      {
        what: "a toleration",
        edit: () => (dep = deployment(namespace, (p) => {
          ((p.containers as Spec[])[0]!).env = [{ name: "LOG_LEVEL", value: "info" }];
          p.tolerations = [{ key: "spot", operator: "Exists" }];
        })),
        gone: async () => ((await live("Deployment", "worker")).spec as { template: { spec: { tolerations: unknown[] } } }).template.spec.tolerations.length === 1,
      },
      {
        what: "a container port, a volume and a container",
        edit: () => (dep = deployment(namespace, (p) => {
          const worker = (p.containers as Spec[])[0]!;
          worker.env = [{ name: "LOG_LEVEL", value: "info" }];
          worker.ports = [{ containerPort: 8080, name: "http" }];
          p.tolerations = [{ key: "spot", operator: "Exists" }];
          p.volumes = [{ name: "cache", emptyDir: {} }];
          p.containers = [worker];
        })),
        gone: async () => {
          const d = await live("Deployment", "worker");
          const pod = (d.spec as { template: { spec: { containers: Spec[]; volumes: Spec[] } } }).template.spec;
          return pod.containers.length === 1 && (container(d, "worker").ports as Spec[]).length === 1 && pod.volumes.length === 1;
        },
      },
      {
        what: "a field set to null",
        edit: () => (dep = deployment(namespace, (p, s) => {
          const worker = (p.containers as Spec[])[0]!;
          worker.env = [{ name: "LOG_LEVEL", value: "info" }];
          worker.ports = [{ containerPort: 8080, name: "http" }];
          p.tolerations = [{ key: "spot", operator: "Exists" }];
          p.volumes = [{ name: "cache", emptyDir: {} }];
          p.containers = [worker];
          s.paused = null;
        })),
        gone: async () => ((await live("Deployment", "worker")).spec as Spec).paused === undefined,
      },
    ];
    for (const step of steps) {
      step.edit();
      const result = await apply([cm, sec, dep]);
      assert.ok(result.entries.some((e) => e.action === "configured"), `${step.what}: the removal is applied`);
      assert.ok(await step.gone(), `${step.what}: gone from the live object`);
      const again = await apply([cm, sec, dep]);
      assert.deepEqual(
        again.entries.filter((e) => e.action !== "unchanged").map((e) => `${e.ref.kind}/${e.ref.name} ${e.action}`),
        [],
        `${step.what}: the next apply of the same revision is a no-op`,
      );
    }
  });

  test("fields other managers own (an HPA's replicas, another controller's label) are not drift and stay", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "others");
    const client = fixture.client;
    const stageSet = { name: "others", namespace };
    const withoutReplicas = deployment(namespace, (_p, s) => delete s.replicas);
    const cm = configMap(namespace, { keep: "1" }, { app: "demo" }, {});
    await applyStage({ client, stageSet, stage: "app", objects: [withoutReplicas, cm] });
    // Another manager (as the HPA controller does through the scale subresource) sets replicas; someone labels the ConfigMap.
    await client.patch({ apiVersion: "apps/v1", kind: "Deployment", namespace, name: "worker" }, { spec: { replicas: 4 } }, "merge", { fieldManager: "horizontal-pod-autoscaler" });
    await client.patch({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "settings" }, { metadata: { labels: { "team.example/cost-center": "42" } } }, "merge", { fieldManager: "labeller" });
    const second = await applyStage({ client, stageSet, stage: "app", objects: [withoutReplicas, cm] });
    assert.deepEqual(second.entries.map((e) => e.action), ["unchanged", "unchanged"], "another manager's fields are not drift");
    const d = await client.get({ apiVersion: "apps/v1", kind: "Deployment", namespace, name: "worker" });
    assert.equal((d?.spec as { replicas: number }).replicas, 4);
    const c = await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "settings" });
    assert.equal(c?.metadata.labels?.["team.example/cost-center"], "42");
  });

  test("an object created by client-side kubectl apply is taken over: a key removed later is gone, the annotation and kubectl's ownership too", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "adopt");
    const client = fixture.client;
    // What `kubectl apply` (client-side) sends: a create with its field manager and the last-applied annotation.
    const legacy = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "legacy-settings", namespace }, data: { key: "value", legacy: "unused" } };
    await client.create(
      { ...legacy, metadata: { ...legacy.metadata, annotations: { [LAST_APPLIED_ANNOTATION]: JSON.stringify(legacy) } } },
      { fieldManager: "kubectl-client-side-apply" },
    );
    const stageSet = { name: "adopt", namespace };
    const r1 = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "legacy-settings" }, data: { key: "value", legacy: "unused" } };
    const r2 = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "legacy-settings" }, data: { key: "value2" } };
    await applyStage({ client, stageSet, stage: "config", objects: [r1] });
    const adopted = await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "legacy-settings" });
    assert.equal(adopted?.metadata.annotations?.[LAST_APPLIED_ANNOTATION], undefined, "the last-applied annotation is dropped");
    const managers = ((adopted?.metadata as { managedFields?: { manager: string }[] }).managedFields ?? []).map((m) => m.manager);
    assert.ok(!managers.includes("kubectl-client-side-apply"), `kubectl's ownership moved to us: ${managers.join(", ")}`);
    await applyStage({ client, stageSet, stage: "config", objects: [r2] });
    const after = await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "legacy-settings" });
    assert.deepEqual(after?.data, { key: "value2" });
  });

  test("end to end: r2 of the removed-fields case is applied, diff exits 1 before (both modes) and 0 after", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "removed-e2e");
    const { client, server } = fixture;
    const objects = (r2: boolean) => ({
      "objects.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: only-removal
  labels: {app: demo${r2 ? "" : ", tier: gold"}}
data: {keep: "1"${r2 ? "" : ', drop: "2"'}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker}
spec:
  replicas: 1
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers:
      - name: worker
        image: registry.invalid/worker:1
        env:
        - {name: LOG_LEVEL, value: info}
${r2 ? "" : '        - {name: LEGACY_MODE, value: "on"}\n'}`,
    });
    await publishExternalArtifact(client, namespace, "removal-config", server.add(`${namespace}-r`, objects(false), "r1"));
    await client.create({ ...STAGESET, metadata: { name: "removals", namespace }, spec: { stages: [{ name: "app", sourceRef: { name: "removal-config" } }] } });
    const controller = await startTestController(fixture.cluster, namespace);
    const cli = (args: string[]) => runCli(args, { kubeconfig: fixture.cluster.kubeconfigPath });
    try {
      await waitForReason(client, namespace, "removals", "Succeeded", 90_000);
      await controller.stop();
      // The controller is stopped: diff previews r2 against the r1 cluster.
      await publishExternalArtifact(client, namespace, "removal-config", server.add(`${namespace}-r`, objects(true), "r2"));
      for (const mode of [[], ["--server-side=false"]]) {
        const diff = await cli(["diff", "removals", "-n", namespace, "--color=never", ...mode]);
        assert.equal(diff.code, 1, `diff ${mode.join(" ")} exits 1: ${diff.stderr}`);
        assert.match(diff.stdout, /-\s+drop: "2"/, `diff ${mode.join(" ")} shows the removed key`);
        assert.match(diff.stdout, /-\s+tier: gold/, `diff ${mode.join(" ")} shows the removed label`);
        assert.match(diff.stdout, /LEGACY_MODE/, `diff ${mode.join(" ")} shows the removed env var`);
      }
    } finally {
      await controller.stop();
    }
    const again = await startTestController(fixture.cluster, namespace);
    try {
      await waitFor(
        async () => {
          const s = await getStageSet(client, namespace, "removals");
          return s?.status?.lastAppliedRevisions?.[`${namespace}/removal-config`] === "r2" && readyCondition(s)?.reason === "Succeeded";
        },
        { description: "r2 applied", timeoutMs: 60_000 },
      );
      const cm = await client.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: "only-removal" });
      assert.deepEqual(cm?.data, { keep: "1" });
      assert.equal(cm?.metadata.labels?.tier, undefined);
      const dep = await client.get({ apiVersion: "apps/v1", kind: "Deployment", namespace, name: "worker" });
      assert.deepEqual(container(dep!, "worker").env, [{ name: "LOG_LEVEL", value: "info" }]);
      await waitForEvent(client, namespace, "Changes", /configured 2/);
      for (const mode of [[], ["--server-side=false"]]) {
        const diff = await cli(["diff", "removals", "-n", namespace, "--color=never", ...mode]);
        assert.equal(diff.code, 0, `diff ${mode.join(" ")} exits 0 after r2: ${diff.stdout}${diff.stderr}`);
      }
    } finally {
      await again.stop();
    }
  });
});

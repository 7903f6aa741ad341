// stagesetctl diff on a first install (../shared/cases/apply-correctness/diff-first-install):
// the usual layout, CRDs in stage "crds" and their custom resources in stage
// "operator", on a cluster that does not serve the kind yet. Everything shows
// as created, the custom resources as rendered and marked not dry-run; exit 1.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { stringify } from "yaml";
import { runCli } from "../support/cli.js";
import { createTestNamespace } from "../support/cluster.js";
import { publishExternalArtifact } from "../support/flux.js";
import { STAGESET, usePipelineFixture } from "../support/pipeline.js";
import { widgetCrd } from "../support/widgets.js";

describe("stagesetctl diff previews a first install", { concurrency: true }, () => {
  const fixture = usePipelineFixture();

  test("crds -> operator on a cluster without the CRD: diff exits 1 and shows the custom resources as created, both modes", async () => {
    const namespace = await createTestNamespace(fixture.cluster, "diff-first");
    const group = `${namespace}.example.test`;
    await publishExternalArtifact(
      fixture.client,
      namespace,
      "crds",
      fixture.server.add(`${namespace}-crds`, { "crd.yaml": stringify(widgetCrd(group)) }, "crds-v1"),
    );
    await publishExternalArtifact(
      fixture.client,
      namespace,
      "operator",
      fixture.server.add(
        `${namespace}-operator`,
        {
          "settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: operator-settings\ndata:\n  mode: watch\n",
          "widgets.yaml": `apiVersion: ${group}/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n---\napiVersion: ${group}/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  size: 5\n`,
        },
        "operator-v1",
      ),
    );
    await fixture.client.create({
      ...STAGESET,
      metadata: { name: "platform", namespace },
      spec: {
        stages: [
          { name: "crds", sourceRef: { name: "crds" } },
          { name: "operator", sourceRef: { name: "operator" } },
        ],
      },
    });

    const notDryRun = `not dry-run: kind Widget \\(${group}/v1\\) is installed by the CustomResourceDefinition widgets\\.${group} of stage "crds"`;
    const notCompared = `not compared with the cluster: kind Widget \\(${group}/v1\\) is installed by the CustomResourceDefinition widgets\\.${group} of stage "crds"`;
    for (const [mode, args, marker] of [
      ["server-side", [], notDryRun],
      ["--server-side=false", ["--server-side=false"], notCompared],
    ] as const) {
      const diff = await runCli(["diff", "platform", "-n", namespace, "--color=never", ...args], { kubeconfig: fixture.cluster.kubeconfigPath });
      assert.equal(diff.code, 1, `${mode}: ${diff.stdout}${diff.stderr}`);
      assert.doesNotMatch(diff.stderr, /this stage or an earlier one/, mode);
      assert.match(diff.stdout, new RegExp(`^@@ CustomResourceDefinition widgets\\.${group} \\(created\\) @@$`, "m"), mode);
      assert.match(diff.stdout, new RegExp(`^@@ ConfigMap ${namespace}/operator-settings \\(created\\) @@$`, "m"), mode);
      for (const [name, size] of [["w1", 3], ["w2", 5]] as const) {
        assert.match(diff.stdout, new RegExp(`^@@ Widget\\.${group} ${namespace}/${name} \\(created, ${marker}, so the API server cannot check it yet\\) @@\\n(\\+.*\\n)*\\+  size: ${size}\\n`, "m"), `${mode}: ${name}`);
      }
    }
    // With --stage the crds stage is not rendered, so its CRD is unknown: the message says so.
    const onlyOperator = await runCli(["diff", "platform", "-n", namespace, "--stage", "operator"], { kubeconfig: fixture.cluster.kubeconfigPath });
    assert.equal(onlyOperator.code, 3, onlyOperator.stdout + onlyOperator.stderr);
    assert.match(onlyOperator.stderr, /--stage left out the earlier stage\(s\) "crds", whose CustomResourceDefinitions were therefore not considered/);
    assert.equal(await fixture.client.get({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name: `widgets.${group}` }), undefined, "a diff never writes");
  });
});

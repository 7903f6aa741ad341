import { after, before } from "node:test";
import type { Condition, KubeObject, StageSet } from "../../src/api/types.js";
import { KubeClient } from "../../src/kube/client.js";
import { ArtifactServer } from "./artifact-server.js";
import { testCluster, type TestCluster } from "./cluster.js";
import { waitFor } from "./wait.js";

export const STAGESET = { apiVersion: "stages.metio.wtf/v1", kind: "StageSet" } as const;

/** What a pipeline test needs: the shared cluster, an admin client and an artifact server. */
export interface PipelineFixture {
  cluster: TestCluster;
  client: KubeClient;
  server: ArtifactServer;
}

/**
 * Registers before/after hooks in the calling suite that set up (and tear
 * down) a PipelineFixture; the returned object is filled in by `before`.
 */
export function usePipelineFixture(): PipelineFixture {
  const fixture = {} as PipelineFixture;
  before(async () => {
    fixture.cluster = await testCluster();
    fixture.server = new ArtifactServer();
    await fixture.server.start();
    fixture.client = KubeClient.fromKubeConfig(fixture.cluster.kubeConfig);
  });
  after(async () => {
    await fixture.server.stop();
    fixture.client.close();
  });
  return fixture;
}

export function getStageSet(client: KubeClient, namespace: string, name: string): Promise<StageSet | undefined> {
  return client.get<StageSet>({ ...STAGESET, namespace, name });
}

export function readyCondition(stageSet: StageSet | undefined): Condition | undefined {
  return stageSet?.status?.conditions?.find((c) => c.type === "Ready");
}

/** Waits until the StageSet's Ready condition has `reason` (at its current generation for Succeeded). */
export function waitForReason(client: KubeClient, namespace: string, name: string, reason: string, timeoutMs = 60_000): Promise<StageSet> {
  return waitFor(
    async () => {
      const s = await getStageSet(client, namespace, name);
      const ready = readyCondition(s);
      if (ready?.reason !== reason) return undefined;
      if (reason === "Succeeded" && s?.status?.observedGeneration !== s?.metadata.generation) return undefined;
      return s;
    },
    { description: `StageSet ${namespace}/${name} to report ${reason}`, timeoutMs, intervalMs: 200 },
  );
}

/** A file set holding one ConfigMap `name` with `data`. */
export function configMapFile(name: string, data: Record<string, string>, extra = ""): Record<string, string> {
  const lines = Object.entries(data).map(([k, v]) => `  ${k}: "${v}"`);
  return { [`${name}.yaml`]: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${extra}data:\n${lines.join("\n")}\n` };
}

/**
 * Waits for an Event with `reason` in `namespace` (whose message matches, if
 * given). Events are written asynchronously, just after the status that
 * announces them, so tests wait rather than list once.
 */
export function waitForEvent(client: KubeClient, namespace: string, reason: string, message?: RegExp): Promise<KubeObject> {
  return waitFor(
    async () => {
      const events = await client.list("v1", "Event", { namespace, fieldSelector: `reason=${reason}` });
      return events.items.find((e) => !message || message.test(String((e as { message?: unknown }).message)));
    },
    { description: `an Event ${reason} in ${namespace}${message ? ` matching ${message}` : ""}`, timeoutMs: 15_000, intervalMs: 100 },
  );
}

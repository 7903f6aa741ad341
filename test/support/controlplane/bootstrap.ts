import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { waitFor, type WaitOptions } from "../wait.js";
import { ControlPlaneError } from "./errors.js";

/** How long a bootstrap step may wait, and when to give up early (a component died, a sibling step failed). */
export type WaitBudget = Pick<WaitOptions, "timeoutMs" | "abortIf">;

const isStatus = (err: unknown, code: number): boolean => err instanceof ApiException && err.code === code;

/** YAML files directly in each directory (or the files themselves), sorted; missing paths are skipped. */
export function listManifestFiles(paths: readonly string[]): string[] {
  const files: string[] = [];
  for (const path of paths) {
    if (!existsSync(path)) continue;
    if (statSync(path).isDirectory()) {
      files.push(
        ...readdirSync(path)
          .filter((name) => /\.ya?ml$/.test(name))
          .sort()
          .map((name) => join(path, name)),
      );
    } else {
      files.push(path);
    }
  }
  return files;
}

function readCrds(file: string): V1CustomResourceDefinition[] {
  const crds: V1CustomResourceDefinition[] = [];
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length > 0) {
      throw new ControlPlaneError(`CRD file ${file} is not valid YAML: ${doc.errors[0]?.message}`);
    }
    const object = doc.toJS() as V1CustomResourceDefinition | null;
    if (object === null) continue;
    if (object.kind !== "CustomResourceDefinition") {
      throw new ControlPlaneError(`${file} holds a ${object.kind ?? "document without kind"}; only CRDs belong there`);
    }
    crds.push(object);
  }
  return crds;
}

async function createOrReplace(api: ApiextensionsV1Api, crd: V1CustomResourceDefinition): Promise<void> {
  try {
    await api.createCustomResourceDefinition({ body: crd });
  } catch (err) {
    if (!isStatus(err, 409)) throw err;
    const name = crd.metadata?.name ?? "";
    const live = await api.readCustomResourceDefinition({ name });
    await api.replaceCustomResourceDefinition({
      name,
      body: { ...crd, metadata: { ...crd.metadata, resourceVersion: live.metadata?.resourceVersion } },
    });
  }
}

/** Creates (or replaces) the CRDs in `files` and waits until each is Established. */
export async function installCrds(kubeConfig: KubeConfig, files: readonly string[], budget: WaitBudget): Promise<string[]> {
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const crds = files.flatMap((file) => readCrds(file).map((crd) => ({ file, crd })));
  await Promise.all(
    crds.map(async ({ file, crd }) => {
      try {
        await createOrReplace(api, crd);
      } catch (err) {
        const detail = err instanceof ApiException ? `${err.code}: ${JSON.stringify(err.body)}` : String(err);
        throw new ControlPlaneError(`installing CRD ${crd.metadata?.name} from ${file} failed: ${detail}`, { cause: err });
      }
    }),
  );
  const names = crds.map(({ crd }) => crd.metadata?.name ?? "");
  await Promise.all(
    names.map((name) =>
      waitFor(
        async () => {
          const live = await api.readCustomResourceDefinition({ name });
          return live.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
        },
        { description: `CRD ${name} Established`, ...budget },
      ),
    ),
  );
  return names;
}

export const FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node";

/** Creates `count` Nodes for kwok to manage and waits until kwok reports them Ready. */
export async function createFakeNodes(kubeConfig: KubeConfig, count: number, budget: WaitBudget): Promise<string[]> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const names = Array.from({ length: count }, (_, i) => `kwok-node-${i}`);
  await Promise.all(
    names.map(async (name) => {
      try {
        await core.createNode({
          body: {
            metadata: {
              name,
              annotations: { [FAKE_NODE_ANNOTATION]: "fake" },
              labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", type: "kwok" },
            },
          },
        });
      } catch (err) {
        if (!isStatus(err, 409)) throw err;
      }
    }),
  );
  await Promise.all(
    names.map((name) =>
      waitFor(
        async () => {
          const node = await core.readNode({ name });
          return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
        },
        { description: `fake node ${name} Ready (kwok)`, ...budget },
      ),
    ),
  );
  return names;
}

/** The serviceaccount controller of kube-controller-manager has created `default/default`. */
export async function waitForDefaultServiceAccount(kubeConfig: KubeConfig, budget: WaitBudget): Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  await waitFor(
    async () => {
      try {
        return (await core.readNamespacedServiceAccount({ name: "default", namespace: "default" })) !== undefined;
      } catch (err) {
        if (isStatus(err, 404)) return false;
        throw err;
      }
    },
    { description: "ServiceAccount default/default (kube-controller-manager)", ...budget },
  );
}

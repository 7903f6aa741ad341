import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { request } from "node:https";
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
import type { ClientTls } from "./health.js";

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

/** The API server address and the admin client TLS material, for raw requests. */
export interface AdminEndpoint {
  readonly server: string;
  readonly tls: ClientTls;
}

/**
 * Server-side applies one CRD as raw JSON. The typed client re-serializes
 * through its models and silently drops `default` and `x-kubernetes-*` schema
 * keys, which would install a different CRD than the file says.
 */
function applyRaw(endpoint: AdminEndpoint, crd: V1CustomResourceDefinition): Promise<void> {
  const name = encodeURIComponent(crd.metadata?.name ?? "");
  const url = `${endpoint.server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}?fieldManager=stageset-test-controlplane&force=true`;
  const body = JSON.stringify(crd);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "PATCH", ...endpoint.tls, headers: { "Content-Type": "application/apply-patch+yaml" }, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          if (res.statusCode === 200 || res.statusCode === 201) resolve();
          else reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString("utf8").slice(0, 2000)}`));
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 30s")));
    req.on("error", reject);
    req.end(body);
  });
}

/** Applies the CRDs in `files` (server-side, forced) and waits until each is Established. */
export async function installCrds(
  kubeConfig: KubeConfig,
  endpoint: AdminEndpoint,
  files: readonly string[],
  budget: WaitBudget,
): Promise<string[]> {
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const crds = files.flatMap((file) => readCrds(file).map((crd) => ({ file, crd })));
  await Promise.all(
    crds.map(async ({ file, crd }) => {
      try {
        await applyRaw(endpoint, crd);
      } catch (err) {
        const detail = err instanceof Error ? err.message : String(err);
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

import type { KubeObject } from "../api/types.js";
import { StageFailedError } from "../errors.js";
import { KindNotFoundError } from "../kube/errors.js";
import { retryTransient } from "./retry.js";
import { CRD_GROUP, CRD_KIND, describeObject, groupOf } from "./objects.js";
import type { ApplyClient, KindInfo } from "./ports.js";
import { systemClock, type Clock } from "../util/clock.js";
import { pollUntil } from "../util/poll.js";

interface CrdSpec {
  group?: string;
  scope?: string;
  names?: { kind?: string; plural?: string };
  versions?: { name?: string; served?: boolean }[];
}

export function isCrd(obj: KubeObject): boolean {
  return obj.kind === CRD_KIND && groupOf(obj.apiVersion) === CRD_GROUP;
}

function specOf(crd: KubeObject): CrdSpec {
  return (crd.spec ?? {}) as CrdSpec;
}

/** The CRD among `crds` that serves `kind` in `apiVersion`. */
export function crdServing(crds: readonly KubeObject[], apiVersion: string, kind: string): KubeObject | undefined {
  const group = groupOf(apiVersion);
  const version = apiVersion.slice(group.length + 1);
  return crds.find((crd) => {
    const spec = specOf(crd);
    return (
      spec.group === group &&
      spec.names?.kind === kind &&
      (spec.versions ?? []).some((v) => v.name === version && v.served !== false)
    );
  });
}

/** Discovery-shaped info for a kind a not-yet-established CRD will serve. */
export function kindInfoFromCrd(crd: KubeObject, apiVersion: string, kind: string): KindInfo {
  const spec = specOf(crd);
  const group = groupOf(apiVersion);
  return {
    group,
    version: apiVersion.slice(group.length + 1),
    kind,
    resource: spec.names?.plural ?? "",
    namespaced: spec.scope !== "Cluster",
  };
}

export function isEstablished(crd: KubeObject | undefined): boolean {
  const conditions = (crd?.status as { conditions?: { type?: string; status?: string }[] } | undefined)?.conditions;
  return (conditions ?? []).some((c) => c.type === "Established" && c.status === "True");
}

/**
 * Waits until each CRD is Established and discovery serves each kind, polling
 * every `intervalMs` (default 200) up to `timeoutMs` on `clock` (default the
 * system clock). Throws StageFailedError naming what is still missing at the
 * timeout, and at once (terminal) for a CRD the API server refuses to
 * establish (NamesAccepted False: a name clash); other API errors propagate.
 */
export async function waitForServedKinds(
  client: ApplyClient,
  crds: readonly KubeObject[],
  kinds: readonly { apiVersion: string; kind: string }[],
  options: { stage: string; timeoutMs: number; intervalMs?: number; clock?: Clock },
): Promise<void> {
  const pendingCrds = new Set(crds);
  const pendingKinds = new Set(kinds);
  await pollUntil(
    options.clock ?? systemClock,
    {
      timeoutMs: options.timeoutMs,
      intervalMs: options.intervalMs ?? 200,
      onTimeout: () => {
        const waitingFor = [
          ...[...pendingCrds].map((c) => `${describeObject(c)} to be Established`),
          ...[...pendingKinds].map((k) => `discovery to serve ${k.kind} in ${k.apiVersion}`),
        ];
        return new StageFailedError(
          `stage "${options.stage}": gave up after ${options.timeoutMs}ms waiting for ${waitingFor.join(", ")}; ` +
            `check the CustomResourceDefinition's status conditions`,
        );
      },
    },
    async () => {
      for (const crd of [...pendingCrds]) {
        const ref = { apiVersion: crd.apiVersion, kind: crd.kind, name: crd.metadata.name ?? "" };
        const live = await retryTransient(() => client.get(ref));
        if (isEstablished(live)) pendingCrds.delete(crd);
        else rejectIfNamesRefused(live, crd, options.stage);
      }
      if (pendingCrds.size > 0) return undefined;
      for (const k of [...pendingKinds]) {
        try {
          await client.resourceFor(k.apiVersion, k.kind);
          pendingKinds.delete(k);
        } catch (err) {
          if (!(err instanceof KindNotFoundError)) throw err;
        }
      }
      return pendingKinds.size === 0 ? true : undefined;
    },
  );
}

function rejectIfNamesRefused(live: KubeObject | undefined, crd: KubeObject, stage: string): void {
  const conditions = (live?.status as { conditions?: { type?: string; status?: string; message?: string }[] } | undefined)
    ?.conditions;
  const refused = (conditions ?? []).find((c) => c.type === "NamesAccepted" && c.status === "False");
  if (refused) {
    throw new StageFailedError(
      `stage "${stage}": ${describeObject(crd)} is not accepted by the API server: ${refused.message ?? "names conflict"}; ` +
        `rename the kind or plural so it does not clash with another CustomResourceDefinition`,
      { terminal: true },
    );
  }
}

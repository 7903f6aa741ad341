/**
 * The `patch` action: patches the target object (by name) or every object the
 * target's label selector matches, as the tenant. `type: merge` (the default)
 * sends a strategic merge patch to built-in kinds and a JSON merge patch to
 * custom resources (which do not support strategic merge); `json6902` sends
 * a JSON Patch (an array of operations). The patch text is YAML or JSON.
 */
import { parse as parseYaml } from "yaml";
import type { PatchAction } from "../api/types.js";
import { InvalidSpecError, StageFailedError } from "../errors.js";
import { describeObject } from "../apply/objects.js";
import type { ObjectRef, PatchType } from "../kube/client.js";
import { KubeApiError } from "../kube/errors.js";
import { actionLabel, actionPath, FIELD_MANAGER, refTo, requestError, resolveTarget, selectTargets } from "./common.js";
import type { ActionEnv, ActionExecutor } from "./types.js";

/**
 * API groups built into kube-apiserver (and its aggregated metrics API): their
 * kinds take strategic merge patches. Everything else is served by a CRD or
 * an aggregated server and gets a JSON merge patch.
 */
export const BUILTIN_GROUPS: ReadonlySet<string> = new Set([
  "",
  "admissionregistration.k8s.io",
  "apiextensions.k8s.io",
  "apiregistration.k8s.io",
  "apps",
  "authentication.k8s.io",
  "authorization.k8s.io",
  "autoscaling",
  "batch",
  "certificates.k8s.io",
  "coordination.k8s.io",
  "discovery.k8s.io",
  "events.k8s.io",
  "flowcontrol.apiserver.k8s.io",
  "internal.apiserver.k8s.io",
  "networking.k8s.io",
  "node.k8s.io",
  "policy",
  "rbac.authorization.k8s.io",
  "resource.k8s.io",
  "scheduling.k8s.io",
  "storage.k8s.io",
  "storagemigration.k8s.io",
]);

/** The patch type `merge` means for a kind: strategic for built-in groups, JSON merge otherwise. */
export function mergePatchTypeFor(apiVersion: string): PatchType {
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  return BUILTIN_GROUPS.has(group) ? "strategic" : "merge";
}

/**
 * The `patch` executor. Rejects with an InvalidSpecError naming the field
 * when the patch text is not YAML/JSON of the right shape (a mapping for
 * merge, a list of operations for json6902); a StageFailedError naming the
 * object when it does not exist, the selector matches nothing, or the API
 * server refuses the patch; an RBACDenied error naming `patch` (or
 * `get`/`list`) and the object when the tenant lacks the right.
 */
export const patchExecutor: ActionExecutor = async (action, env) => {
  const spec = action.patch as PatchAction;
  const what = actionLabel("patch", action);
  const path = `${actionPath(action, env)}.patch`;
  const type = spec.type ?? "merge";
  const body = parsePatch(spec.patch, type, `${path}.patch`);
  const target = await resolveTarget(env.tenant, what, spec.target, env);

  let names: string[];
  if (target.name !== undefined) {
    names = [target.name];
  } else {
    names = (await selectTargets(env.tenant, what, target, env.signal)).map((o) => o.metadata.name ?? "");
    if (names.length === 0) throw new StageFailedError(`${what}: no ${target.description} exist to patch`);
  }
  for (const name of names) {
    env.signal.throwIfAborted();
    await patchOne(what, env, refTo(target, name), body, type === "json6902" ? "json" : mergePatchTypeFor(target.apiVersion));
  }
  const shown = target.name !== undefined ? target.description : `${names.length} ${target.description}`;
  return { message: `patched ${shown} (${type})` };
};

async function patchOne(what: string, env: ActionEnv, object: ObjectRef, body: unknown, type: PatchType): Promise<void> {
  const description = describeObject(object);
  try {
    await env.tenant.patch(object, body, type, { fieldManager: FIELD_MANAGER });
  } catch (err) {
    // A kind outside the list that still lacks strategic merge support (an
    // aggregated API): retry as a JSON merge patch.
    if (type === "strategic" && err instanceof KubeApiError && err.status === 415) {
      try {
        await env.tenant.patch(object, body, "merge", { fieldManager: FIELD_MANAGER });
        return;
      } catch (again) {
        throw requestError(what, "patch", description, again);
      }
    }
    if (err instanceof KubeApiError && err.status === 404) {
      throw new StageFailedError(`${what}: ${description} does not exist`, { cause: err });
    }
    throw requestError(what, "patch", description, err);
  }
}

/** Parses the patch text (YAML or JSON) and checks its shape for `type`. */
function parsePatch(text: string, type: "merge" | "json6902", field: string): unknown {
  let body: unknown;
  try {
    body = parseYaml(text);
  } catch (err) {
    throw new InvalidSpecError(`${field}: not YAML or JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  if (type === "json6902") {
    const ops = Array.isArray(body) ? body : undefined;
    if (!ops || ops.length === 0) {
      throw new InvalidSpecError(`${field}: a json6902 patch is a list of operations, e.g. [{op: replace, path: /spec/replicas, value: 3}]`);
    }
    for (const [i, op] of ops.entries()) {
      const o = op as { op?: unknown; path?: unknown };
      if (typeof o !== "object" || o === null || typeof o.op !== "string" || typeof o.path !== "string") {
        throw new InvalidSpecError(`${field}: operation ${i} needs op and path`);
      }
    }
    return ops;
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new InvalidSpecError(`${field}: a merge patch is a mapping, e.g. {spec: {replicas: 3}}`);
  }
  return body;
}

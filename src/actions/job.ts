/**
 * The `job` action: runs the Jobs rendered from its `sourceRef` (+`path`) and
 * waits until every one completes.
 *
 * Each Job is named `<rendered name>-<8 hex of sha256(revision)>` (shortened
 * to stay within 63 characters), so a new revision runs new Jobs and the same
 * revision finds its Jobs again: a Job that already exists under that name
 * (a run interrupted mid-flight) is adopted, never created twice. Jobs carry
 * the labels of the StageSet, stage, action and list plus the revision hash,
 * and are created as the tenant with the controller's field manager.
 *
 * A Job fails the action when its `Failed` (or `FailureTarget`) condition is
 * True (backoffLimit exhausted, deadline exceeded); the message carries the
 * condition's reason and message and the termination message of its last
 * pod's container. After the wait, finished Jobs of this action from older
 * revisions are deleted, keeping the Jobs of the {@link JOB_HISTORY_REVISIONS}
 * newest revisions (best effort: a failure is logged, not raised).
 */
import { GROUP, Labels, type Action, type JobAction, type KubeObject } from "../api/types.js";
import { describeObject } from "../apply/objects.js";
import { errorMessage, StageFailedError } from "../errors.js";
import { formatDuration } from "../health/wait.js";
import type { ObjectRef } from "../kube/client.js";
import { isAlreadyExists, KubeApiError } from "../kube/errors.js";
import { pollUntil } from "../util/poll.js";
import { placeIn, renderSource } from "./apply.js";
import {
  ACTION_LABEL,
  ACTION_LIST_LABEL,
  actionLabel,
  actionLabels,
  clip,
  FIELD_MANAGER,
  isRetryable,
  request,
  requestError,
  shortHash,
} from "./common.js";
import type { ActionEnv, ActionExecutor } from "./types.js";

/** Label on a `job` action's Jobs: the short hash of the revision they ran for. */
export const REVISION_HASH_LABEL = `${GROUP}/revision-hash`;
/** Annotation on a `job` action's Jobs: the revision they ran for. */
export const REVISION_ANNOTATION = `${GROUP}/revision`;
/** Finished Jobs of this many revisions (the current one included) are kept; older ones are deleted. */
export const JOB_HISTORY_REVISIONS = 3;
/** How often the Jobs are read while waiting, in ms. */
export const JOB_POLL_INTERVAL_MS = 500;
/** Hex digits of the revision hash in Job names. */
export const REVISION_HASH_LENGTH = 8;

const MAX_NAME = 63;

/**
 * `<name>-<hash>`, at most 63 characters: `name` is cut (and stripped of a
 * trailing `-` or `.`) to leave room for the hash.
 */
export function jobName(name: string, revision: string): string {
  const hash = shortHash(revision, REVISION_HASH_LENGTH);
  const base = name.slice(0, MAX_NAME - hash.length - 1).replace(/[-.]+$/, "");
  return `${base}-${hash}`;
}

type JobState = { done: true } | { failed: string } | undefined;

const JOB_API = { apiVersion: "batch/v1", kind: "Job" } as const;

/**
 * The `job` executor. Rejects with a StageFailedError when the source renders
 * no Job or anything but Jobs (naming them), a Job fails (its reason and its
 * last pod's termination message in the message) or disappears, or the
 * timeout passes (naming the Jobs still running); with an RBACDenied error
 * naming the verb and the Job when the tenant lacks a right; with the
 * render's own error when the source cannot be fetched or built.
 */
export const jobExecutor: ActionExecutor = async (action, env) => {
  const spec = action.job as JobAction;
  const what = actionLabel("job", action);
  const rendered = await renderSource(what, env, spec.sourceRef, spec.path);
  const others = rendered.objects.filter((o) => !(o.apiVersion === "batch/v1" && o.kind === "Job"));
  if (others.length > 0) {
    const named = others.slice(0, 5).map((o) => describeObject({ apiVersion: o.apiVersion ?? "", kind: o.kind ?? "", name: o.metadata?.name ?? "" }));
    throw new StageFailedError(
      `${what}: the source renders objects other than batch/v1 Jobs: ${named.join(", ")}${others.length > 5 ? ` and ${others.length - 5} more` : ""}; ` +
        `a job action runs only Jobs (use an apply action for the rest)`,
      { terminal: true },
    );
  }
  if (rendered.objects.length === 0) {
    throw new StageFailedError(`${what}: the source renders no Job`, { terminal: true });
  }

  const hash = shortHash(env.revision, REVISION_HASH_LENGTH);
  const labels = { ...actionLabels(action, env), [REVISION_HASH_LABEL]: hash };
  const jobs: { ref: ObjectRef; uid: string; ttl: boolean }[] = [];
  for (const template of rendered.objects) {
    env.signal.throwIfAborted();
    const placed = await placeIn(what, env, template);
    const job: KubeObject = {
      ...placed,
      metadata: {
        name: jobName(placed.metadata.name ?? "", env.revision),
        namespace: placed.metadata.namespace,
        labels: { ...placed.metadata.labels, ...labels },
        annotations: { ...placed.metadata.annotations, [REVISION_ANNOTATION]: env.revision },
      },
    };
    delete job.status;
    const ref: ObjectRef = { ...JOB_API, name: job.metadata.name!, namespace: job.metadata.namespace! };
    const live = await createOrAdopt(what, env, action, job, ref);
    jobs.push({ ref, uid: live.metadata.uid ?? "", ttl: (live.spec as { ttlSecondsAfterFinished?: number } | undefined)?.ttlSecondsAfterFinished !== undefined });
  }

  try {
    await waitForJobs(what, env, jobs);
  } finally {
    if (!env.signal.aborted) await cleanupHistory(env, action, labels, [...new Set(jobs.map((j) => j.ref.namespace!))], hash);
  }
  const names = jobs.map((j) => describeObject(j.ref)).join(", ");
  return { message: `${names} completed` };
};

/**
 * Creates the Job, or adopts the one of the same name this action created
 * for the same revision (a run interrupted mid-flight). A Job of this action
 * that already failed is replaced, so a retry (`retries`, or the stage's
 * next attempt) really runs the Job again.
 */
async function createOrAdopt(what: string, env: ActionEnv, action: Action, job: KubeObject, ref: ObjectRef): Promise<KubeObject> {
  const description = describeObject(ref);
  const existing = await request(what, "get", description, () => env.tenant.get(ref));
  if (existing) {
    const adopted = adopt(what, env, action, existing, description);
    if (!conditionTrue(adopted, "Failed") && !conditionTrue(adopted, "FailureTarget")) return adopted;
    await replaceFailed(what, env, adopted, ref, description);
  }
  try {
    const created = await env.tenant.create(job, { fieldManager: FIELD_MANAGER });
    env.log.info({ action: action.name, job: description }, "job action created Job");
    return created;
  } catch (err) {
    if (!isAlreadyExists(err)) throw requestError(what, "create", description, err);
    const raced = await request(what, "get", description, () => env.tenant.get(ref));
    if (!raced) throw new StageFailedError(`${what}: ${description} was created by someone else and is gone again`, { cause: err });
    return adopt(what, env, action, raced, description);
  }
}

/** Deletes a failed Job of this action (its pods with it) and waits until it is gone, within the action's timeout. */
async function replaceFailed(what: string, env: ActionEnv, failed: KubeObject, ref: ObjectRef, description: string): Promise<void> {
  const uid = failed.metadata.uid;
  await request(what, "delete", description, () =>
    env.tenant.delete(ref, { propagationPolicy: "Background", ...(uid ? { preconditions: { uid } } : {}) }),
  );
  await pollUntil(
    env.clock,
    {
      timeoutMs: env.timeoutMs,
      intervalMs: JOB_POLL_INTERVAL_MS,
      signal: env.signal,
      onTimeout: () => new StageFailedError(`${what}: the failed ${description} was deleted to run it again but still exists after ${formatDuration(env.timeoutMs)}`),
    },
    async () => {
      const live = await request(what, "get", description, () => env.tenant.get(ref));
      return !live || live.metadata.uid !== uid ? true : undefined;
    },
  );
  env.log.info({ job: description }, "job action replaces the failed Job to run it again");
}

function adopt(what: string, env: ActionEnv, action: Action, live: KubeObject, description: string): KubeObject {
  const want = actionLabels(action, env);
  const labels = live.metadata.labels ?? {};
  const mismatch = Object.entries(want).find(([k, v]) => labels[k] !== v);
  if (mismatch) {
    throw new StageFailedError(
      `${what}: ${description} exists but was not created by this action (label ${mismatch[0]} is ${JSON.stringify(labels[mismatch[0]] ?? null)}, ` +
        `expected ${JSON.stringify(mismatch[1])}); rename the Job in the source or delete the other one`,
    );
  }
  env.log.info({ action: action.name, job: description }, "job action adopted the existing Job");
  return live;
}

async function waitForJobs(what: string, env: ActionEnv, jobs: { ref: ObjectRef; uid: string; ttl: boolean }[]): Promise<void> {
  const finished = new Set<string>();
  let running: string[] = [];
  await pollUntil(
    env.clock,
    {
      timeoutMs: env.timeoutMs,
      intervalMs: JOB_POLL_INTERVAL_MS,
      signal: env.signal,
      onTimeout: () => new StageFailedError(`${what}: not complete within ${formatDuration(env.timeoutMs)}: ${running.join("; ")}`),
    },
    async () => {
      const pending: string[] = [];
      for (const job of jobs) {
        const description = describeObject(job.ref);
        if (finished.has(description)) continue;
        let live: KubeObject | undefined;
        try {
          live = await request(what, "get", description, () => env.tenant.get(job.ref));
        } catch (err) {
          if (isRetryable((err as { cause?: unknown }).cause)) {
            pending.push(`${description} could not be read`);
            continue;
          }
          throw err;
        }
        if (!live || live.metadata.uid !== job.uid) {
          // Removed by its ttlSecondsAfterFinished: it finished, we cannot tell how.
          if (job.ttl) {
            finished.add(description);
            continue;
          }
          throw new StageFailedError(`${what}: ${description} was deleted before it completed`);
        }
        const state = jobState(live);
        if (state && "failed" in state) {
          const pod = await lastPodMessage(env, live);
          throw new StageFailedError(`${what}: ${description} failed: ${state.failed}${pod ? `; ${pod}` : ""}`);
        }
        if (state) {
          finished.add(description);
          continue;
        }
        pending.push(`${description} is running (${jobCounts(live)})`);
      }
      running = pending;
      return pending.length === 0 ? true : undefined;
    },
  );
}

function conditionTrue(job: KubeObject, type: string): { reason?: string; message?: string } | undefined {
  const conditions = ((job.status as { conditions?: unknown } | undefined)?.conditions ?? []) as {
    type?: string;
    status?: string;
    reason?: string;
    message?: string;
  }[];
  return Array.isArray(conditions) ? conditions.find((c) => c.type === type && c.status === "True") : undefined;
}

/** Done, failed (with the condition's reason and message), or undefined while it runs. */
function jobState(job: KubeObject): JobState {
  const failed = conditionTrue(job, "Failed") ?? conditionTrue(job, "FailureTarget");
  if (failed) return { failed: [failed.reason, failed.message].filter(Boolean).join(": ") || "Failed" };
  if (conditionTrue(job, "Complete")) return { done: true };
  return undefined;
}

function jobCounts(job: KubeObject): string {
  const s = (job.status ?? {}) as { active?: number; succeeded?: number; failed?: number };
  return `active ${s.active ?? 0}, succeeded ${s.succeeded ?? 0}, failed ${s.failed ?? 0}`;
}

interface ContainerState {
  terminated?: { exitCode?: number; reason?: string; message?: string; finishedAt?: string };
}
interface ContainerStatus {
  name?: string;
  state?: ContainerState;
  lastState?: ContainerState;
}

/**
 * The termination of the failed Job's last pod, for the failure message:
 * `pod ns/name container "main" exited 1 (Error): <message>`. Best effort:
 * undefined when no pod (or no terminated container) is found, a note when
 * the pods may not be read.
 */
async function lastPodMessage(env: ActionEnv, job: KubeObject): Promise<string | undefined> {
  const namespace = job.metadata.namespace!;
  const name = job.metadata.name!;
  let pods: KubeObject[];
  try {
    pods = (await env.tenant.list("v1", "Pod", { namespace, labelSelector: `batch.kubernetes.io/job-name=${name}` })).items;
    if (pods.length === 0) pods = (await env.tenant.list("v1", "Pod", { namespace, labelSelector: `job-name=${name}` })).items;
  } catch (err) {
    return `its pods could not be read (${err instanceof KubeApiError ? `HTTP ${err.status} ${err.statusReason}` : errorMessage(err)})`;
  }
  const uid = job.metadata.uid;
  const own = pods.filter((p) => !uid || (p.metadata.ownerReferences ?? []).some((o) => o.uid === uid));
  const candidates = (own.length > 0 ? own : pods)
    .map((pod) => ({ pod, termination: lastTermination(pod) }))
    .filter((c) => c.termination !== undefined)
    .sort((a, b) => timeOf(a.termination!.finishedAt ?? a.pod.metadata.creationTimestamp) - timeOf(b.termination!.finishedAt ?? b.pod.metadata.creationTimestamp));
  const last = candidates.at(-1);
  if (!last) return undefined;
  const t = last.termination!;
  const exit = t.exitCode !== undefined ? `exited ${t.exitCode}` : "terminated";
  const reason = t.reason ? ` (${t.reason})` : "";
  const message = t.message ? `: ${clip(t.message, 1024)}` : " without a termination message";
  return `pod ${namespace}/${last.pod.metadata.name} container ${JSON.stringify(t.container)} ${exit}${reason}${message}`;
}

function timeOf(stamp: string | undefined): number {
  const t = stamp ? Date.parse(stamp) : NaN;
  return Number.isNaN(t) ? 0 : t;
}

/** The most relevant terminated container of a pod: a failed one first, with a message first. */
function lastTermination(pod: KubeObject): { container: string; exitCode?: number; reason?: string; message?: string; finishedAt?: string } | undefined {
  const status = (pod.status ?? {}) as { containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[] };
  const all = [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])];
  const terminated = all.flatMap((c) => {
    const t = c.state?.terminated ?? c.lastState?.terminated;
    return t ? [{ container: c.name ?? "", ...t }] : [];
  });
  const rank = (t: { exitCode?: number; message?: string }) => (t.exitCode !== 0 ? 2 : 0) + (t.message ? 1 : 0);
  return terminated.sort((a, b) => rank(b) - rank(a))[0];
}

/**
 * Deletes finished Jobs of this action (same StageSet, stage, list and
 * action) whose revision is not among the {@link JOB_HISTORY_REVISIONS}
 * newest, with propagationPolicy Background. Best effort: failures are logged.
 */
async function cleanupHistory(
  env: ActionEnv,
  action: Action,
  labels: Record<string, string>,
  namespaces: string[],
  currentHash: string,
): Promise<void> {
  const selector = [Labels.ownerName, Labels.ownerNamespace, Labels.stage, ACTION_LIST_LABEL, ACTION_LABEL]
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
  for (const namespace of namespaces) {
    try {
      const { items } = await env.tenant.list(JOB_API.apiVersion, JOB_API.kind, { namespace, labelSelector: selector });
      const newest = new Map<string, number>();
      for (const job of items) {
        const hash = job.metadata.labels?.[REVISION_HASH_LABEL] ?? "";
        newest.set(hash, Math.max(newest.get(hash) ?? 0, timeOf(job.metadata.creationTimestamp)));
      }
      newest.set(currentHash, Number.MAX_SAFE_INTEGER);
      const kept = new Set(
        [...newest.entries()]
          .sort((a, b) => b[1] - a[1])
          .slice(0, JOB_HISTORY_REVISIONS)
          .map(([hash]) => hash),
      );
      for (const job of items) {
        const hash = job.metadata.labels?.[REVISION_HASH_LABEL] ?? "";
        if (kept.has(hash) || job.metadata.deletionTimestamp) continue;
        if (!conditionTrue(job, "Complete") && !conditionTrue(job, "Failed")) continue;
        const ref: ObjectRef = { ...JOB_API, namespace, name: job.metadata.name ?? "" };
        await env.tenant.delete(ref, { propagationPolicy: "Background", preconditions: { uid: job.metadata.uid } });
        env.log.info({ action: action.name, job: describeObject(ref) }, "job action deleted a Job of an older revision");
      }
    } catch (err) {
      env.log.warn({ action: action.name, namespace, err: errorMessage(err) }, "job action could not clean up Jobs of older revisions");
    }
  }
}

/**
 * The self-signed mode's shared state: ONE Secret in the controller's
 * namespace holds the CAs and the serving pair, so every replica serves the
 * same certificate and patches the same `caBundle` — replicas never fight.
 *
 * Secret `<service>-self-signed-tls` (see {@link defaultSecretName}), type
 * `kubernetes.io/tls`, data:
 *
 * | key | content |
 * |---|---|
 * | `tls.crt`, `tls.key` | the serving certificate (SANs of the webhook Service) and its key |
 * | `ca.crt`, `ca.key` | the CA that signed `tls.crt` |
 * | `next-ca.crt`, `next-ca.key` | the CA the next rotation signs with |
 * | `previous-ca.crt` | the CA before `ca.crt` (no key), trusted until it expires |
 * | `ca-bundle.crt` | previous + current + next CA: what every webhook's `caBundle` holds |
 *
 * Rotation (`--webhook-cert-validity` V, spec "rotated at validity/3"): the
 * serving certificate is valid V and is renewed once no more than 2V/3 of it is
 * left, i.e. a third into its life. A renewal promotes `next-ca` to `ca`,
 * makes a new `next-ca`, and signs the new serving certificate with the
 * promoted CA. Because the promoted CA has been in the `caBundle` since the
 * previous rotation, the API server already trusts the new certificate when a
 * replica starts serving it, and the old CA stays in the bundle, so replicas
 * still serving the old certificate (until they notice the rotation) stay
 * trusted too: no rotation needs two writes to land in order. CAs are valid
 * 2V: V/3 as `next`, V/3 as `ca`, and long enough for the last certificate
 * they signed.
 *
 * Writes use optimistic concurrency: create, and on AlreadyExists read and
 * adopt; update with the resourceVersion read, and on Conflict read again and
 * adopt what the winner wrote (see {@link syncCertSecret}).
 */
import type { X509Certificate } from "node:crypto";
import type { KubeObject } from "../api/types.js";
import type { KubeClient } from "../kube/client.js";
import { isAlreadyExists, isConflict } from "../kube/errors.js";
import {
  coversNames,
  createCa,
  issuedBy,
  issueServingCert,
  keyMatches,
  parseCertificate,
  validityOf,
  type PemKeyPair,
  type SubjectAltNames,
} from "./certs.js";

/** The Secret's data keys. */
export const SecretKeys = {
  servingCert: "tls.crt",
  servingKey: "tls.key",
  caCert: "ca.crt",
  caKey: "ca.key",
  nextCaCert: "next-ca.crt",
  nextCaKey: "next-ca.key",
  previousCaCert: "previous-ca.crt",
  caBundle: "ca-bundle.crt",
} as const;

/** Labels on the Secret, so `kubectl get secret -l` finds it. */
export const SECRET_LABELS = {
  "app.kubernetes.io/managed-by": "stageset-controller",
  "app.kubernetes.io/component": "webhook",
};

/** The Secret's name for a webhook Service: `<service>-self-signed-tls`. */
export function defaultSecretName(serviceName: string): string {
  return `${serviceName}-self-signed-tls`;
}

/** What the Secret holds, decoded. */
export interface CertSecretData {
  serving: PemKeyPair;
  ca: PemKeyPair;
  nextCa: PemKeyPair;
  previousCaPem?: string;
  /** previous (while unexpired) + current + next CA, PEM. */
  caBundlePem: string;
}

/** The client calls this module makes; a KubeClient has them. */
export type SecretClient = Pick<KubeClient, "get" | "create" | "update">;

export interface CertPlanOptions {
  /** Now, ms since the epoch. */
  now: number;
  /** Validity of a serving certificate, ms (`--webhook-cert-validity`). */
  validityMs: number;
  /** Names the serving certificate must carry. */
  names: SubjectAltNames;
}

/** A Secret state to write, and why. */
export interface CertPlan {
  data: CertSecretData;
  reason: string;
}

/**
 * The serving certificate is renewed once no more than this much of it is
 * left: two thirds of the validity, i.e. a third into its life (ms).
 */
export function renewBeforeExpiryMs(validityMs: number): number {
  return (validityMs * 2) / 3;
}

/** How long a CA is valid, in serving-certificate validities (V/3 as next, V/3 as current, V for its last certificate, and slack). */
export const CA_VALIDITY_FACTOR = 2;

/**
 * When the serving certificate of `data` is due for renewal (ms since the
 * epoch): `notAfter - 2/3 · validityMs`; a sync at or after it renews. Undefined when it does not parse
 * (then it is due now).
 */
export function renewalDue(data: CertSecretData, validityMs: number): number | undefined {
  try {
    return validityOf(parseCertificate(data.serving.certPem)).notAfter - renewBeforeExpiryMs(validityMs);
  } catch {
    return undefined;
  }
}

/**
 * Decides whether the Secret's content (undefined: no Secret yet, or one this
 * module cannot read) must change, and builds the new content. Returns
 * undefined when `current` is fine as it is. Pure apart from key generation
 * and signing; time is `options.now`.
 */
export async function planCertSecret(current: CertSecretData | undefined, options: CertPlanOptions): Promise<CertPlan | undefined> {
  const { now, validityMs, names } = options;
  const caValidityMs = CA_VALIDITY_FACTOR * validityMs;
  const newCa = () => createCa({ now, validityMs: caValidityMs });
  const issue = (ca: PemKeyPair) => issueServingCert(ca, names, { now, validityMs });

  const ca = current ? usableCa(current.ca, now) : undefined;
  if (!current || !ca) {
    // Nothing usable: start over, still trusting the old CA while it lasts so certificates it signed keep working.
    const previousCaPem = current && usableCa(current.ca, now, false) ? current.ca.certPem : undefined;
    const [caPair, nextCa] = await Promise.all([newCa(), newCa()]);
    return {
      data: withBundle({ serving: await issue(caPair), ca: caPair, nextCa, previousCaPem }, now),
      reason: current ? "the Secret's CA is missing, invalid or expired" : "no certificate yet",
    };
  }

  const servingProblem = servingCertProblem(current, ca.cert, options);
  const next = usableCa(current.nextCa, now);
  const nextLasts = (ms: number) => next !== undefined && next.notAfter - now >= ms;

  if (servingProblem) {
    const promote = servingProblem === "due for renewal" || ca.notAfter - now < validityMs;
    if (!promote) {
      return { data: withBundle({ ...current, serving: await issue(current.ca) }, now), reason: `the serving certificate ${servingProblem}` };
    }
    // Promote next to current: the API server has trusted it since the last rotation.
    const promoted = nextLasts(validityMs) ? current.nextCa : await newCa();
    return {
      data: withBundle({ serving: await issue(promoted), ca: promoted, nextCa: await newCa(), previousCaPem: current.ca.certPem }, now),
      reason: `the serving certificate ${servingProblem}`,
    };
  }
  if (!nextLasts(validityMs + validityMs / 3)) {
    return { data: withBundle({ ...current, nextCa: await newCa() }, now), reason: "the next CA is missing, invalid or too short-lived" };
  }
  const bundled = withBundle(current, now);
  if (bundled.caBundlePem !== current.caBundlePem) return { data: bundled, reason: "the CA bundle is out of date" };
  return undefined;
}

/** Why the serving certificate needs replacing, or undefined. */
function servingCertProblem(data: CertSecretData, ca: X509Certificate, options: CertPlanOptions): string | undefined {
  let cert;
  try {
    cert = parseCertificate(data.serving.certPem);
  } catch {
    return "does not parse";
  }
  if (!keyMatches(cert, data.serving.keyPem)) return "does not match its key";
  if (!issuedBy(cert, ca)) return "was not signed by the current CA";
  if (!coversNames(cert, options.names)) return "lacks some of the webhook's names";
  const { notAfter } = validityOf(cert);
  if (notAfter - options.now <= renewBeforeExpiryMs(options.validityMs)) return "due for renewal";
  return undefined;
}

/** A CA pair that parses, is a CA, has its key, and (with `requireUnexpired`) has not expired. */
function usableCa(pair: PemKeyPair | undefined, now: number, requireKey = true): { cert: X509Certificate; notAfter: number } | undefined {
  if (!pair?.certPem) return undefined;
  try {
    const cert = parseCertificate(pair.certPem);
    if (!cert.ca) return undefined;
    if (requireKey && !keyMatches(cert, pair.keyPem)) return undefined;
    const { notAfter } = validityOf(cert);
    return notAfter > now ? { cert, notAfter } : undefined;
  } catch {
    return undefined;
  }
}

/** `data` with `caBundlePem` = previous (while unexpired) + current + next CA. */
function withBundle(data: Omit<CertSecretData, "caBundlePem"> & { caBundlePem?: string }, now: number): CertSecretData {
  const stillValid = (pem: string | undefined) => {
    if (!pem) return false;
    try {
      return validityOf(parseCertificate(pem)).notAfter > now;
    } catch {
      return false;
    }
  };
  const previousCaPem = stillValid(data.previousCaPem) ? data.previousCaPem : undefined;
  const bundle = [previousCaPem, data.ca.certPem, data.nextCa.certPem].filter((pem): pem is string => pem !== undefined);
  const result: CertSecretData = { serving: data.serving, ca: data.ca, nextCa: data.nextCa, caBundlePem: bundle.map(ensureNewline).join("") };
  if (previousCaPem) result.previousCaPem = previousCaPem;
  return result;
}

function ensureNewline(pem: string): string {
  return pem.endsWith("\n") ? pem : `${pem}\n`;
}

/** Decodes a Secret's data; undefined when a required key is missing. */
export function decodeCertSecret(secret: KubeObject): CertSecretData | undefined {
  const raw = (secret.data ?? {}) as Record<string, string | undefined>;
  const text = (key: string) => (raw[key] ? Buffer.from(raw[key], "base64").toString("utf8") : undefined);
  const serving = pair(text(SecretKeys.servingCert), text(SecretKeys.servingKey));
  const ca = pair(text(SecretKeys.caCert), text(SecretKeys.caKey));
  if (!serving || !ca) return undefined;
  const result: CertSecretData = {
    serving,
    ca,
    nextCa: pair(text(SecretKeys.nextCaCert), text(SecretKeys.nextCaKey)) ?? { certPem: "", keyPem: "" },
    caBundlePem: text(SecretKeys.caBundle) ?? "",
  };
  const previous = text(SecretKeys.previousCaCert);
  if (previous) result.previousCaPem = previous;
  return result;
}

/** The Secret's `data` for `content`, base64-encoded. */
export function encodeCertSecret(content: CertSecretData): Record<string, string> {
  const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
  const data: Record<string, string> = {
    [SecretKeys.servingCert]: b64(content.serving.certPem),
    [SecretKeys.servingKey]: b64(content.serving.keyPem),
    [SecretKeys.caCert]: b64(content.ca.certPem),
    [SecretKeys.caKey]: b64(content.ca.keyPem),
    [SecretKeys.nextCaCert]: b64(content.nextCa.certPem),
    [SecretKeys.nextCaKey]: b64(content.nextCa.keyPem),
    [SecretKeys.caBundle]: b64(content.caBundlePem),
  };
  if (content.previousCaPem) data[SecretKeys.previousCaCert] = b64(content.previousCaPem);
  return data;
}

function pair(certPem: string | undefined, keyPem: string | undefined): PemKeyPair | undefined {
  return certPem && keyPem ? { certPem, keyPem } : undefined;
}

/** The Secret's state after a sync. */
export interface CertSecretState {
  data: CertSecretData;
  resourceVersion: string;
  /** What this replica wrote, if anything: `created`, `updated` (with the plan's reason), or nothing when it adopted. */
  wrote?: { action: "created" | "updated"; reason: string };
}

/** Thrown when another writer kept winning: the caller retries later. */
export class CertSecretConflictError extends Error {
  constructor(namespace: string, name: string, attempts: number) {
    super(`Secret ${namespace}/${name}: gave up after ${attempts} write conflicts with other replicas; retrying later`);
    this.name = "CertSecretConflictError";
  }
}

const MAX_CONFLICTS = 5;

/**
 * Makes the Secret `namespace/name` hold usable certificates and returns what
 * it holds. Reads it; when absent, creates it (on AlreadyExists — another
 * replica was first — reads again and adopts that); when present but due
 * (see {@link planCertSecret}), updates it with the resourceVersion it read
 * (on Conflict reads again: the winner's content is usually fine and is
 * adopted as it is). Gives up with {@link CertSecretConflictError} after 5
 * conflicts in a row; throws the KubeApiError of any other failed request.
 * `plan` is injectable for tests.
 */
export async function syncCertSecret(
  client: SecretClient,
  ref: { namespace: string; name: string },
  options: () => CertPlanOptions,
  plan: typeof planCertSecret = planCertSecret,
): Promise<CertSecretState> {
  const objectRef = { apiVersion: "v1", kind: "Secret", namespace: ref.namespace, name: ref.name };
  for (let attempt = 0; attempt < MAX_CONFLICTS; attempt++) {
    const secret = await client.get(objectRef);
    const data = secret ? decodeCertSecret(secret) : undefined;
    const next = await plan(data, options());
    if (secret && data && !next) return { data, resourceVersion: secret.metadata.resourceVersion ?? "" };
    if (!next) throw new Error("planCertSecret returned nothing for an unusable Secret");

    if (!secret) {
      const body: KubeObject = {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: ref.name, namespace: ref.namespace, labels: { ...SECRET_LABELS } },
        type: "kubernetes.io/tls",
        data: encodeCertSecret(next.data),
      };
      try {
        const created = await client.create(body);
        return { data: next.data, resourceVersion: created.metadata.resourceVersion ?? "", wrote: { action: "created", reason: next.reason } };
      } catch (err) {
        if (isAlreadyExists(err) || isConflict(err)) continue;
        throw err;
      }
    }

    const updatedBody: KubeObject = {
      ...secret,
      metadata: { ...secret.metadata, labels: { ...secret.metadata.labels, ...SECRET_LABELS } },
      // Keys this module does not own (none expected) are kept.
      data: { ...((secret.data ?? {}) as Record<string, string>), ...encodeCertSecret(next.data) },
    };
    if (!next.data.previousCaPem) delete (updatedBody.data as Record<string, string>)[SecretKeys.previousCaCert];
    try {
      const updated = await client.update(updatedBody);
      return { data: next.data, resourceVersion: updated.metadata.resourceVersion ?? "", wrote: { action: "updated", reason: next.reason } };
    } catch (err) {
      if (isConflict(err)) continue;
      throw err;
    }
  }
  throw new CertSecretConflictError(ref.namespace, ref.name, MAX_CONFLICTS);
}

import { KubeApiError } from "../kube/errors.js";

const MAX_MESSAGE = 400;

/**
 * What the API server said about a refused write, short and without the
 * values it echoes: an Invalid answer quotes the whole rejected value
 * (`Invalid value: core.PodTemplateSpec{…env…}: field is immutable`), which
 * may hold secret material. Each cause becomes `field: what is wrong`.
 */
export function apiServerMessage(err: unknown): string {
  if (!(err instanceof KubeApiError)) return truncate(err instanceof Error ? err.message : String(err));
  if (err.causes.length > 0) {
    return truncate(err.causes.map((c) => `${c.field ?? "object"}: ${withoutValue(c.message ?? c.reason ?? "invalid")}`).join("; "));
  }
  return truncate(withoutValue(err.serverMessage));
}

function withoutValue(message: string): string {
  const start = message.indexOf("Invalid value:");
  if (start < 0) return message;
  const lastColon = message.lastIndexOf(": ");
  const detail = lastColon > start + "Invalid value:".length ? message.slice(lastColon + 2) : "invalid value";
  return `${message.slice(0, start)}${detail}`.trim();
}

function truncate(s: string): string {
  return s.length <= MAX_MESSAGE ? s : `${s.slice(0, MAX_MESSAGE)}…`;
}

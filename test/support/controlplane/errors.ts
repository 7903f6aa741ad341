/**
 * The local test control plane could not start or stop. Test infrastructure,
 * not the reconcile pipeline, so it carries no Ready reason; the message names
 * the component, what was expected, and the log file to read.
 */
export class ControlPlaneError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ControlPlaneError";
  }
}

/**
 * cert-manager mode: the serving certificate is `tls.crt`/`tls.key` in
 * `--webhook-cert-dir`, a Secret volume cert-manager keeps current. The
 * kubelet updates such a volume atomically: it writes the new files into a
 * fresh `..<timestamp>` directory and renames a `..data` symlink over the old
 * one (`tls.crt` is a symlink into `..data`), so the file at the path changes
 * without any write to it. The watcher therefore compares CONTENTS, not
 * mtimes, and looks on two triggers: an `fs.watch` of the directory (the
 * rename is an event there; cheap and prompt) and a poll on the Clock every
 * `pollIntervalMs` (watches miss events on some filesystems and across
 * directory swaps — controller-runtime's certwatcher also polls besides
 * fsnotify). A changed pair is loaded only when the key matches the
 * certificate (a non-atomic writer may be half done); otherwise the old pair
 * keeps serving and the next trigger tries again.
 */
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../util/log.js";
import { pause, type Clock } from "../util/clock.js";
import { keyMatches, parseCertificate } from "./certs.js";
import type { ServingCertificate } from "./server.js";

export const CERT_FILE = "tls.crt";
export const KEY_FILE = "tls.key";

/** Default poll of the certificate files: 10 s. */
export const DEFAULT_CERT_DIR_POLL_INTERVAL_MS = 10_000;

export interface CertDirWatcherOptions {
  dir: string;
  clock: Clock;
  log: Logger;
  /** Serves a pair that changed; throws when it is unusable (the watcher logs and keeps the old one). */
  serve: (certificate: ServingCertificate) => void;
  pollIntervalMs?: number;
}

export interface CertDirWatcher {
  /** Reads the files now and serves them if they changed; resolves to whether a new pair was served. */
  check(): Promise<boolean>;
  stop(): Promise<void>;
}

/** Starts watching `dir`; the first check runs at once. Never throws: unreadable or mismatched files are logged and retried. */
export function watchCertDir(options: CertDirWatcherOptions): CertDirWatcher {
  const { clock, log, dir } = options;
  const pollMs = options.pollIntervalMs ?? DEFAULT_CERT_DIR_POLL_INTERVAL_MS;
  const stopper = new AbortController();
  let loaded: { cert: string; key: string } | undefined;
  let lastProblem: string | undefined;
  let checking: Promise<boolean> | undefined;
  let again = false;

  async function readPair(): Promise<{ cert: string; key: string }> {
    const [cert, key] = await Promise.all([readFile(join(dir, CERT_FILE), "utf8"), readFile(join(dir, KEY_FILE), "utf8")]);
    return { cert, key };
  }

  async function checkOnce(): Promise<boolean> {
    let pair: { cert: string; key: string };
    try {
      pair = await readPair();
    } catch (err) {
      problem(`cannot read ${CERT_FILE}/${KEY_FILE} in ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return false;
    }
    if (loaded && loaded.cert === pair.cert && loaded.key === pair.key) return false;
    let serial: string;
    try {
      const cert = parseCertificate(pair.cert);
      if (!keyMatches(cert, pair.key)) throw new Error(`${KEY_FILE} is not the key of ${CERT_FILE}`);
      serial = cert.serialNumber;
      options.serve({ certPem: pair.cert, keyPem: pair.key });
    } catch (err) {
      problem(`the certificate in ${dir} cannot be served (the previous one stays): ${(err as Error).message}`);
      return false;
    }
    loaded = pair;
    lastProblem = undefined;
    log.info({ dir, serial }, "webhook serving a new certificate from the certificate directory");
    return true;
  }

  /** One check at a time; a trigger during a check runs one more after it. */
  function check(): Promise<boolean> {
    if (checking) {
      again = true;
      return checking;
    }
    checking = (async () => {
      let changed = false;
      do {
        again = false;
        changed = (await checkOnce()) || changed;
      } while (again && !stopper.signal.aborted);
      return changed;
    })().finally(() => (checking = undefined));
    return checking;
  }

  function problem(message: string): void {
    // Once per distinct problem, not once per poll.
    if (message !== lastProblem) log.warn({ dir }, message);
    lastProblem = message;
  }

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { persistent: false }, () => void check());
    watcher.on("error", (err) => {
      log.warn({ dir, err: err.message }, "watching the certificate directory failed; polling only");
      watcher?.close();
      watcher = undefined;
    });
  } catch (err) {
    log.warn({ dir, err: (err as Error).message }, "cannot watch the certificate directory; polling only");
  }

  const running = (async () => {
    while (!stopper.signal.aborted) {
      await check();
      await pause(clock, pollMs, stopper.signal);
    }
  })();

  return {
    check,
    stop: async () => {
      stopper.abort();
      watcher?.close();
      await running;
      await checking;
    },
  };
}

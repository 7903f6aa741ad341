import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../../src/util/log.js";
import { watchCertDir } from "../../../src/webhook/cert-dir.js";
import { createCa, issueServingCert, type PemKeyPair } from "../../../src/webhook/certs.js";
import type { ServingCertificate } from "../../../src/webhook/server.js";
import { FakeClock } from "../../support/fake-clock.js";

/** A logger that keeps its lines, to check what (and what not) is logged. */
function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString("utf8"));
      callback();
    },
  });
  return { log: createLogger({ level: "debug", encoding: "json", destination: stream }), lines };
}

describe("certificate directory watcher", () => {
  let dir: string;
  let one: PemKeyPair;
  let two: PemKeyPair;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "stageset-cert-dir-"));
    const ca = await createCa({ now: Date.now(), validityMs: 3_600_000 });
    const names = { dnsNames: ["localhost"], ipAddresses: [] };
    [one, two] = await Promise.all([
      issueServingCert(ca, names, { now: Date.now(), validityMs: 3_600_000 }),
      issueServingCert(ca, names, { now: Date.now(), validityMs: 3_600_000 }),
    ]);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("waits for the files, serves a matching pair once, ignores a mismatched pair and never logs a key", async () => {
    const served: ServingCertificate[] = [];
    const { log, lines } = capturingLogger();
    const clock = new FakeClock();
    const watcher = watchCertDir({ dir, clock, log, serve: (c) => void served.push(c), pollIntervalMs: 10_000 });
    try {
      await clock.whenSleeping(1);
      assert.equal(served.length, 0, "nothing to serve yet");
      assert.equal(lines.filter((l) => l.includes("cannot read")).length, 1);

      // A writer that is half done: the new certificate next to the old key.
      await writeFile(join(dir, "tls.crt"), two.certPem);
      await writeFile(join(dir, "tls.key"), one.keyPem);
      assert.equal(await watcher.check(), false);
      assert.equal(served.length, 0);

      await writeFile(join(dir, "tls.key"), two.keyPem);
      await watcher.check();
      assert.equal(served.length, 1);
      assert.equal(new X509Certificate(served[0]!.certPem).serialNumber, new X509Certificate(two.certPem).serialNumber);
      assert.equal(await watcher.check(), false, "unchanged files are not served again");
      await clock.advance(10_000);
      assert.equal(served.length, 1);

      // The poll on the clock finds a change too (whether or not the directory watch saw it first).
      await writeFile(join(dir, "tls.crt"), one.certPem);
      await writeFile(join(dir, "tls.key"), one.keyPem);
      await clock.advance(10_000);
      await watcher.check();
      assert.equal(served.length, 2);
      assert.equal(served[1]!.keyPem, one.keyPem);

      const text = lines.join("");
      assert.ok(!text.includes("PRIVATE KEY"), "no key material in the log");
      assert.ok(text.includes("is not the key of tls.crt"));
    } finally {
      await watcher.stop();
    }
  });

  it("keeps the old certificate when serving the new one fails", async () => {
    const served: string[] = [];
    let refuse = false;
    const clock = new FakeClock();
    await writeFile(join(dir, "tls.crt"), one.certPem);
    await writeFile(join(dir, "tls.key"), one.keyPem);
    const { log } = capturingLogger();
    const watcher = watchCertDir({
      dir,
      clock,
      log,
      serve: (c) => {
        if (refuse) throw new Error("refused");
        served.push(c.certPem);
      },
    });
    try {
      await clock.whenSleeping(1);
      assert.deepEqual(served, [one.certPem]);
      refuse = true;
      await writeFile(join(dir, "tls.crt"), two.certPem);
      await writeFile(join(dir, "tls.key"), two.keyPem);
      assert.equal(await watcher.check(), false);
      refuse = false;
      assert.equal(await watcher.check(), true, "tried again on the next check");
      assert.deepEqual(served, [one.certPem, two.certPem]);
    } finally {
      await watcher.stop();
    }
  });
});

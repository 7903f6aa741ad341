import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { parseControllerFlags } from "../../../src/config/flags.js";
import { rollbackStoreFromConfig } from "../../../src/rollback/config.js";
import { FilesystemRollbackStore } from "../../../src/rollback/fs-store.js";
import { RollbackStoreError } from "../../../src/rollback/store.js";
import type { Logger } from "../../../src/util/log.js";

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "rollback-config-"));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

function capturingLogger(): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.push(chunk.toString());
      done();
    },
  });
  return { log: pino({ level: "info" }, stream) as unknown as Logger, lines: () => out.join("").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("rollbackStoreFromConfig", () => {
  it("no store flags: no store", async () => {
    const { log } = capturingLogger();
    assert.equal(await rollbackStoreFromConfig(parseControllerFlags([]).rollbackStore, log), undefined);
  });

  it("--rollback-store-path: the filesystem store, with one startup line about encryption at rest", async () => {
    const { log, lines } = capturingLogger();
    const path = join(work, "store");
    const store = await rollbackStoreFromConfig(parseControllerFlags(["--rollback-store-path", path]).rollbackStore, log);
    assert.ok(store instanceof FilesystemRollbackStore);
    assert.equal(store.root, path);
    const reminders = lines().filter((l) => /encrypted at rest/.test(String(l.msg)));
    assert.equal(reminders.length, 1);
  });

  it("--rollback-store-path together with the S3 endpoint exits 2 naming both flags (flag parsing)", () => {
    assert.throws(
      () => parseControllerFlags(["--rollback-store-path", "/x", "--rollback-store-s3-endpoint", "s3:9000", "--rollback-store-s3-bucket", "b"]),
      (err: unknown) => err instanceof Error && err.name === "FlagError" && /--rollback-store-path/.test(err.message) && /--rollback-store-s3-endpoint/.test(err.message),
    );
  });

  it("refuses inconsistent S3 credential flags", () => {
    const base = ["--rollback-store-s3-endpoint", "s3:9000", "--rollback-store-s3-bucket", "b"];
    assert.throws(() => parseControllerFlags([...base, "--rollback-store-s3-session-token", "t"]), /session-token needs/);
    assert.throws(
      () => parseControllerFlags([...base, "--rollback-store-s3-anonymous", "--rollback-store-s3-access-key", "a", "--rollback-store-s3-secret-key", "s"]),
      /mutually exclusive/,
    );
    assert.throws(() => parseControllerFlags([...base, "--rollback-store-s3-sse-kms-key", "k"]), /needs --rollback-store-s3-sse=kms/);
    assert.doesNotThrow(() => parseControllerFlags([...base, "--rollback-store-s3-sse", "kms", "--rollback-store-s3-sse-kms-key", "k"]));
  });

  it("an S3 store that cannot be reached fails at startup without a credential in the message", async () => {
    const { log, lines } = capturingLogger();
    const config = parseControllerFlags([
      "--rollback-store-s3-endpoint", "127.0.0.1:1",
      "--rollback-store-s3-bucket", "b",
      "--rollback-store-s3-use-ssl=false",
      "--rollback-store-s3-access-key", "AKIACONFIGTEST",
      "--rollback-store-s3-secret-key", "config-test-secret",
    ]).rollbackStore;
    await assert.rejects(rollbackStoreFromConfig(config, log), (err: unknown) => {
      assert.ok(err instanceof RollbackStoreError);
      assert.match(err.message, /s3 bucket "b" at http:\/\/127\.0\.0\.1:1/);
      assert.ok(!err.message.includes("config-test-secret") && !err.message.includes("AKIACONFIGTEST"));
      return true;
    });
    for (const line of lines()) assert.ok(!JSON.stringify(line).includes("config-test-secret"));
  });
});

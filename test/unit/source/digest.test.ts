import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { ArtifactError } from "../../../src/errors.js";
import { blake3 } from "../../../src/source/blake3.js";
import { computeDigest, createDigester, DIGEST_ALGORITHMS, parseDigest } from "../../../src/source/digest.js";

describe("parseDigest", () => {
  it("accepts every algorithm Flux writes", () => {
    const data = Buffer.from("manifests");
    for (const algorithm of DIGEST_ALGORITHMS) {
      const digest = computeDigest(algorithm, data);
      assert.deepEqual(parseDigest(digest), { algorithm, hex: digest.split(":")[1] });
    }
  });

  it("normalises upper-case hex", () => {
    const hex = createHash("sha256").update("x").digest("hex");
    assert.equal(parseDigest(`sha256:${hex.toUpperCase()}`).hex, hex);
  });

  it("refuses an unsupported algorithm, naming it and the supported ones", () => {
    assert.throws(
      () => parseDigest("md5:d41d8cd98f00b204e9800998ecf8427e"),
      (err: unknown) =>
        err instanceof ArtifactError && err.terminal && /"md5"/.test(err.message) && /sha256, sha384, sha512, blake3/.test(err.message),
    );
    assert.throws(() => parseDigest("e3b0c44298fc1c149afbf4c8996fb924"), ArtifactError);
  });

  it("refuses a digest of the wrong length or with non-hex characters", () => {
    assert.throws(() => parseDigest("sha256:abc"), /expected 64 hex characters/);
    assert.throws(() => parseDigest(`sha512:${"z".repeat(128)}`), /not a valid sha512 digest/);
  });
});

describe("createDigester", () => {
  it("agrees with node:crypto for the SHA family and with blake3() for BLAKE3", () => {
    const data = Buffer.from("a".repeat(5000));
    for (const algorithm of ["sha1", "sha256", "sha384", "sha512"] as const) {
      const digester = createDigester(algorithm);
      digester.update(data.subarray(0, 1234));
      digester.update(data.subarray(1234));
      assert.equal(digester.hex(), createHash(algorithm).update(data).digest("hex"), algorithm);
    }
    const digester = createDigester("blake3");
    digester.update(data.subarray(0, 999));
    digester.update(data.subarray(999));
    assert.equal(digester.hex(), blake3(data).toString("hex"));
  });
});

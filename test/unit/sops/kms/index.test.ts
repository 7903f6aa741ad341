import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeBase64, decodeBase64Url, raceAbort } from "../../../../src/sops/kms/common.js";
import { defaultKmsProviders } from "../../../../src/sops/kms/index.js";

describe("defaultKmsProviders", () => {
  test("one provider per cloud KMS recipient kind, built without I/O", () => {
    const kinds = defaultKmsProviders().map((p) => p.kind);
    assert.deepEqual(kinds.sort(), ["azure_kv", "gcp_kms", "hc_vault", "kms"]);
  });
});

describe("encodings of `enc`", () => {
  test("base64 (AWS, GCP, Vault's plaintext) is strict", () => {
    assert.deepEqual(decodeBase64("AAECAw=="), Buffer.from([0, 1, 2, 3]));
    assert.deepEqual(decodeBase64("AAECAw"), Buffer.from([0, 1, 2, 3]));
    assert.equal(decodeBase64("AA-_"), undefined);
    assert.equal(decodeBase64("A"), undefined);
    assert.equal(decodeBase64("not base64!"), undefined);
  });

  test("unpadded base64url (Azure, Go's RawURLEncoding) is strict", () => {
    assert.deepEqual(decodeBase64Url("-_8"), Buffer.from([0xfb, 0xff]));
    assert.equal(decodeBase64Url("-_8="), undefined);
    assert.equal(decodeBase64Url("+/8"), undefined);
  });
});

describe("raceAbort", () => {
  test("rejects with the signal's reason while the call is pending", async () => {
    const controller = new AbortController();
    const pending = raceAbort(new Promise(() => {}), controller.signal);
    controller.abort(new Error("cancelled"));
    await assert.rejects(pending, /cancelled/);
  });

  test("settles with the call otherwise", async () => {
    assert.equal(await raceAbort(Promise.resolve(7), new AbortController().signal), 7);
    assert.equal(await raceAbort(Promise.resolve(8), undefined), 8);
  });
});

import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, sign, verify, X509Certificate } from "node:crypto";
import { test } from "node:test";
import { namedBits, objectIdentifier, time, unsignedInteger } from "../../support/controlplane/der.js";
import { createPki } from "../../support/controlplane/pki.js";

test("DER encoders produce the canonical bytes", () => {
  assert.equal(objectIdentifier("1.2.840.10045.4.3.2").toString("hex"), "06082a8648ce3d040302");
  assert.equal(unsignedInteger(Buffer.from([0x00, 0x80])).toString("hex"), "02020080");
  assert.equal(unsignedInteger(Buffer.from([0x00, 0x00, 0x01])).toString("hex"), "020101");
  // keyUsage digitalSignature|keyCertSign|cRLSign: one unused trailing bit.
  assert.equal(namedBits([0, 5, 6]).toString("hex"), "03020186");
  assert.equal(time(new Date("2030-01-02T03:04:05Z")).toString("latin1"), "\x17\x0d300102030405Z");
  assert.equal(time(new Date("2051-01-02T03:04:05Z")).toString("latin1"), "\x18\x0f20510102030405Z");
});

test("createPki issues a CA, a serving and an admin certificate that chain and match their keys", () => {
  const now = new Date("2030-06-01T00:00:00Z");
  const pki = createPki({ servingAltNames: ["127.0.0.1", "localhost", "10.96.0.1"], now });
  const ca = new X509Certificate(pki.ca.certPem);
  const serving = new X509Certificate(pki.serving.certPem);
  const admin = new X509Certificate(pki.admin.certPem);

  assert.equal(ca.ca, true);
  assert.equal(ca.verify(ca.publicKey), true, "the CA is self-signed");
  for (const leaf of [serving, admin]) {
    assert.equal(leaf.ca, false);
    assert.equal(leaf.checkIssued(ca), true);
    assert.equal(leaf.verify(ca.publicKey), true);
    assert.ok(new Date(leaf.validFrom) < now && now < new Date(leaf.validTo));
  }

  assert.equal(serving.subjectAltName, "IP Address:127.0.0.1, DNS:localhost, IP Address:10.96.0.1");
  assert.equal(serving.checkIP("127.0.0.1"), "127.0.0.1");
  assert.deepEqual(serving.keyUsage, ["1.3.6.1.5.5.7.3.1"]);
  assert.deepEqual(admin.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
  assert.match(admin.subject, /O=system:masters/);
  assert.match(admin.subject, /CN=admin/);

  assert.equal(serving.checkPrivateKey(createPrivateKey(pki.serving.keyPem)), true);
  assert.equal(admin.checkPrivateKey(createPrivateKey(pki.admin.keyPem)), true);
  const signature = sign("sha256", Buffer.from("token"), createPrivateKey(pki.serviceAccount.privateKeyPem));
  assert.equal(verify("sha256", Buffer.from("token"), createPublicKey(pki.serviceAccount.publicKeyPem), signature), true);
});

test("createPki refuses IPv6 alternative names instead of encoding them wrongly", () => {
  assert.throws(() => createPki({ servingAltNames: ["::1"] }), /IPv6/);
});

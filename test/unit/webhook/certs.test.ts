import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { before, describe, it } from "node:test";
import {
  CLOCK_SKEW_ALLOWANCE_MS,
  coversNames,
  createCa,
  issuedBy,
  issueServingCert,
  keyMatches,
  serviceDnsNames,
  splitNames,
  splitPemBundle,
  subjectAltNamesOf,
  validityOf,
  type PemKeyPair,
} from "../../../src/webhook/certs.js";

const NOW = Date.UTC(2024, 0, 1);
const HOUR = 3_600_000;
const names = {
  dnsNames: [...serviceDnsNames("stageset-controller-webhook", "flux-system"), "localhost"],
  ipAddresses: ["127.0.0.1", "::1"],
};

describe("webhook certificates", () => {
  let ca: PemKeyPair;
  let serving: PemKeyPair;

  before(async () => {
    ca = await createCa({ now: NOW, validityMs: 48 * HOUR });
    serving = await issueServingCert(ca, names, { now: NOW, validityMs: 24 * HOUR });
  });

  it("names the Service the way the API server calls it, plus the other forms", () => {
    assert.deepEqual(serviceDnsNames("hook", "ns"), ["hook.ns.svc", "hook.ns.svc.cluster.local", "hook.ns", "hook"]);
    assert.deepEqual(splitNames(["127.0.0.1", "localhost", "::1"]), { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"] });
  });

  it("makes a CA: basicConstraints cA, its own issuer, its key, valid from an hour early for the asked time", () => {
    const cert = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, true);
    assert.ok(cert.checkIssued(cert));
    assert.ok(cert.verify(cert.publicKey));
    assert.ok(keyMatches(cert, ca.keyPem));
    assert.match(cert.keyUsage ? cert.keyUsage.join(",") : "", /^$|/);
    assert.deepEqual(validityOf(cert), { notBefore: NOW - CLOCK_SKEW_ALLOWANCE_MS, notAfter: NOW + 48 * HOUR });
  });

  it("issues a serving certificate the CA signed, for every name, with serverAuth", () => {
    const cert = new X509Certificate(serving.certPem);
    const caCert = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, false);
    assert.ok(cert.checkIssued(caCert), "issuer is the CA");
    assert.ok(cert.verify(caCert.publicKey), "signature verifies with the CA key");
    assert.ok(issuedBy(cert, caCert));
    assert.ok(keyMatches(cert, serving.keyPem));
    assert.ok(!keyMatches(cert, ca.keyPem));
    assert.deepEqual(subjectAltNamesOf(cert), names);
    assert.ok(coversNames(cert, names));
    assert.ok(!coversNames(cert, { dnsNames: ["other.ns.svc"], ipAddresses: [] }));
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.1"], "extended key usage serverAuth");
    assert.equal(cert.subject, "CN=stageset-controller-webhook.flux-system.svc");
    assert.deepEqual(validityOf(cert), { notBefore: NOW - CLOCK_SKEW_ALLOWANCE_MS, notAfter: NOW + 24 * HOUR });
    // Positive serial: the first byte's high bit is clear.
    assert.ok(parseInt(cert.serialNumber.slice(0, 2), 16) < 0x80);
    assert.ok(cert.checkHost("stageset-controller-webhook.flux-system.svc"));
    assert.ok(cert.checkIP("127.0.0.1"));
  });

  it("never issues past the CA's end", async () => {
    const cert = new X509Certificate((await issueServingCert(ca, names, { now: NOW, validityMs: 100 * HOUR })).certPem);
    assert.equal(validityOf(cert).notAfter, NOW + 48 * HOUR);
  });

  it("is not signed by another CA", async () => {
    const other = new X509Certificate((await createCa({ now: NOW, validityMs: HOUR })).certPem);
    assert.ok(!issuedBy(new X509Certificate(serving.certPem), other));
  });

  it("refuses to issue for no names", async () => {
    await assert.rejects(issueServingCert(ca, { dnsNames: [], ipAddresses: [] }, { now: NOW, validityMs: HOUR }), /at least one name/);
  });

  it("splits a PEM bundle into its certificates", () => {
    const blocks = splitPemBundle(`${ca.certPem}${serving.certPem}`);
    assert.equal(blocks.length, 2);
    assert.equal(new X509Certificate(blocks[1]!).serialNumber, new X509Certificate(serving.certPem).serialNumber);
  });
});

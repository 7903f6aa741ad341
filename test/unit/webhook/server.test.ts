import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { request } from "node:https";
import { connect } from "node:tls";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "../../../src/util/log.js";
import { ADMISSION_API_VERSION, ADMISSION_PATH } from "../../../src/webhook/admission.js";
import { createCa, issueServingCert, type PemKeyPair } from "../../../src/webhook/certs.js";
import { startAdmissionServer, type AdmissionServer } from "../../../src/webhook/server.js";
import { fullStageSet } from "../api/fixtures.js";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const names = { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] };

function send(port: number, ca: string, options: { path?: string; method?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: options.path ?? ADMISSION_PATH,
        method: options.method ?? "POST",
        ca,
        agent: false,
        headers: { "content-type": "application/json", ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    // A server that answers 413 and closes may reset the connection while the body is still going out.
    req.on("error", reject);
    req.end(options.body);
  });
}

function reviewOf(object: unknown, uid = "u-1"): string {
  return JSON.stringify({
    apiVersion: ADMISSION_API_VERSION,
    kind: "AdmissionReview",
    request: { uid, kind: { group: "stages.metio.wtf", version: "v1", kind: "StageSet" }, operation: "CREATE", object },
  });
}

/** The serial of the certificate a new TLS connection gets. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const serial = socket.getPeerX509Certificate()?.serialNumber ?? "";
      socket.end();
      resolve(serial);
    });
    socket.on("error", reject);
  });
}

describe("admission server", () => {
  let ca: PemKeyPair;
  let serving: PemKeyPair;
  let server: AdmissionServer;
  let port: number;

  before(async () => {
    ca = await createCa({ now: Date.now(), validityMs: 3_600_000 });
    serving = await issueServingCert(ca, names, { now: Date.now(), validityMs: 3_600_000 });
    server = await startAdmissionServer({ port: 0, host: "127.0.0.1", log: silentLogger(), maxBodyBytes: 64 * 1024 });
    port = server.port;
  });
  after(() => server.close());

  it("fails TLS handshakes until it has a certificate, then serves it", async () => {
    assert.equal(server.hasCertificate(), false);
    await assert.rejects(send(port, ca.certPem, { body: reviewOf(fullStageSet()) }));
    server.setCertificate(serving);
    assert.equal(server.hasCertificate(), true);
    assert.equal(await servedSerial(port), new X509Certificate(serving.certPem).serialNumber);
  });

  it("answers an AdmissionReview with 200: allowed for a valid StageSet", async () => {
    const answer = await send(port, ca.certPem, { body: reviewOf(fullStageSet()) });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(answer.body), { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", response: { uid: "u-1", allowed: true } });
  });

  it("answers 200 with allowed false and the field for an invalid one", async () => {
    const obj = fullStageSet();
    obj.spec.migrations![0]!.stage = "ghost";
    const answer = await send(port, ca.certPem, { body: reviewOf(obj, "u-2") });
    assert.equal(answer.status, 200);
    const { response } = JSON.parse(answer.body) as { response: { uid: string; allowed: boolean; status: { code: number; message: string } } };
    assert.equal(response.uid, "u-2");
    assert.equal(response.allowed, false);
    assert.equal(response.status.code, 422);
    assert.match(response.status.message, /spec\.migrations\[0\]\.stage/);
  });

  it("answers 400 for a body that is not JSON or not an AdmissionReview", async () => {
    const notJson = await send(port, ca.certPem, { body: "{not json" });
    assert.equal(notJson.status, 400);
    assert.match(notJson.body, /not JSON/);
    const wrongVersion = await send(port, ca.certPem, { body: JSON.stringify({ apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: { uid: "x" } }) });
    assert.equal(wrongVersion.status, 400);
    assert.match(wrongVersion.body, /admissionReviewVersions: \[v1\]/);
  });

  it("answers 405 with Allow: POST for another method, 404 for another path, 415 for another content type", async () => {
    const get = await send(port, ca.certPem, { method: "GET" });
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, "POST");
    assert.equal((await send(port, ca.certPem, { path: "/validate", body: "{}" })).status, 404);
    assert.equal((await send(port, ca.certPem, { body: "{}", headers: { "content-type": "text/plain" } })).status, 415);
  });

  it("answers 413 for a body over the limit, announced or streamed", async () => {
    const big = Buffer.alloc(100 * 1024, 0x20);
    const announced = await send(port, ca.certPem, { body: big });
    assert.equal(announced.status, 413);
    const streamed = await send(port, ca.certPem, { body: big, headers: { "transfer-encoding": "chunked" } });
    assert.equal(streamed.status, 413);
    // The server still answers afterwards.
    assert.equal((await send(port, ca.certPem, { body: reviewOf(fullStageSet()) })).status, 200);
  });

  it("keeps the previous certificate when a new one does not match its key", async () => {
    const other = await issueServingCert(ca, names, { now: Date.now(), validityMs: 3_600_000 });
    assert.throws(() => server.setCertificate({ certPem: other.certPem, keyPem: serving.keyPem }), /cannot be used/);
    assert.equal(await servedSerial(port), new X509Certificate(serving.certPem).serialNumber);
    server.setCertificate(other);
    assert.equal(await servedSerial(port), new X509Certificate(other.certPem).serialNumber);
  });

  it("answers a review whose validation threw with a 500 status in the review", async () => {
    const failing = await startAdmissionServer({
      port: 0,
      host: "127.0.0.1",
      log: silentLogger(),
      validate: () => {
        throw new Error("boom");
      },
    });
    try {
      failing.setCertificate(serving);
      const answer = await send(failing.port, ca.certPem, { body: reviewOf(fullStageSet(), "u-3") });
      assert.equal(answer.status, 200);
      const { response } = JSON.parse(answer.body) as { response: { uid: string; allowed: boolean; status: { code: number; message: string } } };
      assert.deepEqual([response.uid, response.allowed, response.status.code], ["u-3", false, 500]);
      assert.match(response.status.message, /boom/);
    } finally {
      await failing.close();
    }
  });
});

describe("admission server defaults", () => {
  it("accepts a 3 MiB review (an UPDATE carries two objects) and refuses one over 7 MiB with 413", async () => {
    const ca = await createCa({ now: Date.now(), validityMs: 3_600_000 });
    const server = await startAdmissionServer({ port: 0, host: "127.0.0.1", log: silentLogger() });
    try {
      server.setCertificate(await issueServingCert(ca, names, { now: Date.now(), validityMs: 3_600_000 }));
      const other = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "big" }, data: { x: "y".repeat(3 * 1024 * 1024) } };
      const body = JSON.stringify({ apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", request: { uid: "b", kind: { group: "", version: "v1", kind: "ConfigMap" }, operation: "CREATE", object: other } });
      assert.equal((await send(server.port, ca.certPem, { body })).status, 200);
      assert.equal((await send(server.port, ca.certPem, { body: Buffer.alloc(7 * 1024 * 1024 + 1, 0x20) })).status, 413);
    } finally {
      await server.close();
    }
  });
});

// The transport's TLS settings from a kubeconfig: the cluster CA is the only
// one trusted, the client certificate is presented, tls-server-name is the
// name verified, and insecure-skip-tls-verify turns verification off. An
// HTTPS server on loopback with certificates from the control plane's PKI
// code stands in for the API server.
import assert from "node:assert/strict";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { after, before, describe, it } from "node:test";
import { KubeConfig, type Cluster } from "../../../src/kube/kubeconfig-file.js";
import { Transport } from "../../../src/kube/transport.js";
import { createPki, type ControlPlanePki } from "../../support/controlplane/pki.js";

const b64 = (pem: string) => Buffer.from(pem).toString("base64");

let pki: ControlPlanePki;
let server: https.Server;
let base = "";

before(async () => {
  pki = createPki({ servingAltNames: ["127.0.0.1", "kubernetes.default.svc"] });
  server = https.createServer(
    { key: pki.serving.keyPem, cert: pki.serving.certPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ client: peer?.subject?.CN ?? null, authorized: (req.socket as TLSSocket).authorized }));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

function transport(cluster: Partial<Cluster>, withClientCert = true): Transport {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: base, skipTLSVerify: false, ...cluster }],
    users: [withClientCert ? { name: "u", certData: b64(pki.admin.certPem), keyData: b64(pki.admin.keyPem) } : { name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return new Transport(kc, { timeoutMs: 5_000 });
}

const ask = (t: Transport) => t.json<{ client: string | null; authorized: boolean }>({ verb: "get", method: "GET", path: "/api", operation: "reading /api" });

describe("Transport TLS from the kubeconfig", () => {
  it("trusts the cluster CA and presents the client certificate, over several requests on kept-alive connections", async () => {
    const t = transport({ caData: b64(pki.ca.certPem) });
    try {
      for (let i = 0; i < 3; i++) assert.deepEqual(await ask(t), { client: "admin", authorized: true });
    } finally {
      t.close();
    }
  });

  it("refuses a server whose certificate another CA signed", async () => {
    const t = transport({ caData: b64(createPki({ servingAltNames: ["127.0.0.1"] }).ca.certPem) });
    try {
      await assert.rejects(ask(t), /certificate|self.signed|verify/i);
    } finally {
      t.close();
    }
  });

  it("verifies the name tls-server-name gives, not the address", async () => {
    const named = transport({ caData: b64(pki.ca.certPem), tlsServerName: "kubernetes.default.svc" });
    const wrong = transport({ caData: b64(pki.ca.certPem), tlsServerName: "not-the-apiserver.example" });
    try {
      assert.deepEqual(await ask(named), { client: "admin", authorized: true });
      await assert.rejects(ask(wrong), /not-the-apiserver\.example|altnames|Hostname/i);
    } finally {
      named.close();
      wrong.close();
    }
  });

  it("connects without verifying under insecure-skip-tls-verify, and without a client certificate when the user has none", async () => {
    const t = transport({ skipTLSVerify: true }, false);
    try {
      assert.deepEqual(await ask(t), { client: null, authorized: false });
    } finally {
      t.close();
    }
  });
});

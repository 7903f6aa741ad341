import { stringify } from "yaml";

export interface KubeconfigInput {
  readonly server: string;
  readonly caCertPem: string;
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
  readonly contextName?: string;
}

const b64 = (pem: string): string => Buffer.from(pem, "utf8").toString("base64");

/** An admin kubeconfig with the CA and client certificate embedded. */
export function renderKubeconfig(input: KubeconfigInput): string {
  const name = input.contextName ?? "stageset-test";
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name, cluster: { server: input.server, "certificate-authority-data": b64(input.caCertPem) } }],
    users: [
      {
        name: "admin",
        user: { "client-certificate-data": b64(input.clientCertPem), "client-key-data": b64(input.clientKeyPem) },
      },
    ],
    contexts: [{ name, context: { cluster: name, user: "admin", namespace: "default" } }],
    "current-context": name,
  });
}

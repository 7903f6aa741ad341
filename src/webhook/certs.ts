/**
 * The self-signed mode's certificates: a CA and the webhook's serving
 * certificate it signs.
 *
 * Keys are RSA 2048, made by node:crypto. node:crypto makes keys and parses
 * certificates (`X509Certificate`) but cannot issue one, so the certificates
 * are built and signed with node-forge (digitalbazaar/forge: maintained since
 * 2010, no dependencies, BSD-3-Clause): its certificate builder is the
 * smallest well-kept way to write the few X.509 fields needed here.
 * (@peculiar/x509 was the alternative; it needs a global `reflect-metadata`
 * polyfill.) RSA rather than ECDSA because forge signs only with RSA; the
 * API server accepts both. Everything read back is parsed with node:crypto.
 *
 * The shapes follow what the API server's webhook client (Go crypto/tls)
 * verifies: the serving name in subjectAltName (the common name is ignored),
 * serverAuth extended key usage, a positive serial, a CA with basicConstraints
 * `cA: true` and keyCertSign.
 */
import { createPrivateKey, generateKeyPair as generateKeyPairCallback, randomBytes, X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { promisify } from "node:util";
import forge from "node-forge";

const generateKeyPair = promisify(generateKeyPairCallback);

/** A PEM certificate and its PEM private key (PKCS#1, what cert-manager writes too). */
export interface PemKeyPair {
  certPem: string;
  keyPem: string;
}

/**
 * Certificates start this long before they are made, so a peer whose clock is
 * behind (another replica, the API server) already accepts them; an hour
 * covers any clock an NTP-less node drifts to between restarts.
 */
export const CLOCK_SKEW_ALLOWANCE_MS = 60 * 60_000;

/** Common name prefix of the CAs this module makes (`-<issue time in Unix seconds>` follows). */
export const CA_COMMON_NAME = "stageset-controller-webhook-ca";

export interface SubjectAltNames {
  dnsNames: string[];
  ipAddresses: string[];
}

/**
 * The names the API server may use for the webhook Service: a
 * `clientConfig.service` reference is called as `<service>.<namespace>.svc`;
 * the short and fully qualified forms are there for anything else
 * (controller-runtime's and cert-manager's examples list the same four).
 */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, `${service}.${namespace}`, service];
}

/** Sorts extra names into DNS names and IP addresses (`127.0.0.1`, `::1`, `localhost`). */
export function splitNames(names: readonly string[]): SubjectAltNames {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const name of names) (isIP(name) ? ipAddresses : dnsNames).push(name);
  return { dnsNames, ipAddresses };
}

/**
 * A new CA: valid from `now` less {@link CLOCK_SKEW_ALLOWANCE_MS} until
 * `now + validityMs` (ms since the epoch, ms). Takes ~0.1–0.3 s of CPU
 * (RSA key generation runs off the event loop, signing on it).
 */
export async function createCa(options: { now: number; validityMs: number }): Promise<PemKeyPair> {
  const { keyPem, forgeKey, forgePublic } = await newKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forgePublic;
  cert.serialNumber = newSerial();
  setValidity(cert, options.now, options.validityMs);
  const name = [commonName(`${CA_COMMON_NAME}-${Math.floor(options.now / 1000)}`)];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(forgeKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/**
 * A serving certificate for `names`, signed by `ca`, valid from `now` less
 * {@link CLOCK_SKEW_ALLOWANCE_MS} until `now + validityMs`, but never past
 * the CA's own end. Throws when `names` is empty or `ca` does not parse.
 */
export async function issueServingCert(
  ca: PemKeyPair,
  names: SubjectAltNames,
  options: { now: number; validityMs: number },
): Promise<PemKeyPair> {
  if (names.dnsNames.length === 0 && names.ipAddresses.length === 0) throw new Error("a serving certificate needs at least one name");
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const { keyPem, forgePublic } = await newKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forgePublic;
  cert.serialNumber = newSerial();
  setValidity(cert, options.now, options.validityMs);
  if (cert.validity.notAfter > caCert.validity.notAfter) cert.validity.notAfter = caCert.validity.notAfter;
  cert.setSubject([commonName(names.dnsNames[0] ?? names.ipAddresses[0]!)]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: [...names.dnsNames.map((value) => ({ type: 2, value })), ...names.ipAddresses.map((ip) => ({ type: 7, ip }))],
    },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/** Parses a PEM certificate (the first of a chain). Throws a message without the PEM when it does not parse. */
export function parseCertificate(pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new Error(`not a PEM certificate: ${(err as Error).message}`, { cause: err });
  }
}

/** Whether `keyPem` is the private key of `cert`. False (never a throw) when the key does not parse. */
export function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** Whether `cert` was issued and signed by `ca`. */
export function issuedBy(cert: X509Certificate, ca: X509Certificate): boolean {
  try {
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** The names of a certificate's subjectAltName extension. */
export function subjectAltNamesOf(cert: X509Certificate): SubjectAltNames {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  // Node's format: `DNS:a.example, IP Address:127.0.0.1` (names with commas are quoted; ours have none).
  for (const entry of (cert.subjectAltName ?? "").split(", ")) {
    if (entry.startsWith("DNS:")) dnsNames.push(entry.slice(4));
    else if (entry.startsWith("IP Address:")) ipAddresses.push(normalizeIp(entry.slice(11)));
  }
  return { dnsNames, ipAddresses };
}

/** Whether `cert` names every one of `wanted` (more is fine). */
export function coversNames(cert: X509Certificate, wanted: SubjectAltNames): boolean {
  const have = subjectAltNamesOf(cert);
  return (
    wanted.dnsNames.every((name) => have.dnsNames.includes(name)) &&
    wanted.ipAddresses.every((ip) => have.ipAddresses.includes(normalizeIp(ip)))
  );
}

/** `notBefore`/`notAfter` of a certificate in ms since the epoch. */
export function validityOf(cert: X509Certificate): { notBefore: number; notAfter: number } {
  return { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

/** Every certificate of a PEM bundle, each as its own PEM block. */
export function splitPemBundle(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)?.map((block) => `${block}\n`) ?? [];
}

/**
 * A common name as a UTF8String (RFC 5280 §4.1.2.4). forge's default is a
 * PrintableString, which Go's x509 parser rejects when the value holds a
 * character outside that set (`@`, `_`, `*`).
 */
function commonName(value: string): forge.pki.CertificateField {
  // forge reads valueTagClass as a universal type (x509.js); @types/node-forge declares it as asn1.Class.
  return { name: "commonName", value, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class };
}

function normalizeIp(ip: string): string {
  // Node prints IPv6 SANs in full form (0:0:0:0:0:0:0:1); compare compressed.
  if (!ip.includes(":")) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip;
  }
}

function setValidity(cert: forge.pki.Certificate, now: number, validityMs: number): void {
  // X.509 times have whole seconds.
  cert.validity.notBefore = new Date(Math.floor((now - CLOCK_SKEW_ALLOWANCE_MS) / 1000) * 1000);
  cert.validity.notAfter = new Date(Math.floor((now + validityMs) / 1000) * 1000);
}

/** A random positive 128-bit serial (RFC 5280 §4.1.2.2: positive, at most 20 octets). */
function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString("hex");
}

async function newKey(): Promise<{ keyPem: string; forgeKey: forge.pki.rsa.PrivateKey; forgePublic: forge.pki.rsa.PublicKey }> {
  const { privateKey, publicKey } = await generateKeyPair("rsa", { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  return {
    keyPem,
    forgeKey: forge.pki.privateKeyFromPem(keyPem),
    forgePublic: forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString()),
  };
}

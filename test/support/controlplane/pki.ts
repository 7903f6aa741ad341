import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import {
  bitString,
  boolean,
  explicit,
  implicitPrimitive,
  namedBits,
  objectIdentifier,
  octetString,
  sequence,
  set,
  smallInteger,
  time,
  unsignedInteger,
  utf8String,
} from "./der.js";

/** A PEM private key and the PEM certificate for it. */
export interface KeyPair {
  readonly keyPem: string;
  readonly certPem: string;
}

/** Everything the control plane's TLS and service-account tokens need. */
export interface ControlPlanePki {
  /** Signs every certificate below; the API server's client CA and the cluster root CA. */
  readonly ca: KeyPair;
  /** Serving certificate for 127.0.0.1/localhost and the in-cluster `kubernetes` names. */
  readonly serving: KeyPair;
  /** Client certificate for user `admin` in group `system:masters`. */
  readonly admin: KeyPair;
  /** Signs and verifies service-account tokens. */
  readonly serviceAccount: { readonly privateKeyPem: string; readonly publicKeyPem: string };
}

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

const KEY_USAGE_BIT = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

/** The in-cluster names clients use for the API server. */
export const API_SERVER_DNS_NAMES = [
  "localhost",
  "kubernetes",
  "kubernetes.default",
  "kubernetes.default.svc",
  "kubernetes.default.svc.cluster.local",
];

interface Subject {
  readonly commonName: string;
  readonly organizations?: readonly string[];
}

interface CertificateRequest {
  readonly subject: Subject;
  readonly publicKey: KeyObject;
  readonly isCA: boolean;
  readonly extendedKeyUsages: readonly string[];
  readonly altNames: readonly string[];
}

interface Issuer {
  readonly subject: Subject;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

const VALIDITY_MS = 365 * 24 * 3600 * 1000;
const CLOCK_SKEW_MS = 3600 * 1000;

function encodeName(subject: Subject): Buffer {
  const attribute = (oid: string, value: string): Buffer =>
    set(sequence(objectIdentifier(oid), utf8String(value)));
  return sequence(
    ...(subject.organizations ?? []).map((org) => attribute(OID.organization, org)),
    attribute(OID.commonName, subject.commonName),
  );
}

function keyIdentifier(publicKey: KeyObject): Buffer {
  return createHash("sha1").update(publicKey.export({ type: "spki", format: "der" })).digest();
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(oid), ...(critical ? [boolean(true)] : []), octetString(value));
}

function encodeAltName(name: string): Buffer {
  const family = isIP(name);
  if (family === 4) return implicitPrimitive(7, Buffer.from(name.split(".").map(Number)));
  if (family === 6) throw new Error(`IPv6 alternative names are not supported: ${name}`);
  return implicitPrimitive(2, Buffer.from(name, "ascii"));
}

function encodeExtensions(request: CertificateRequest, issuer: Issuer): Buffer {
  const usages = request.isCA
    ? [KEY_USAGE_BIT.digitalSignature, KEY_USAGE_BIT.keyCertSign, KEY_USAGE_BIT.cRLSign]
    : [KEY_USAGE_BIT.digitalSignature, KEY_USAGE_BIT.keyEncipherment];
  const extensions = [
    extension(OID.basicConstraints, true, request.isCA ? sequence(boolean(true)) : sequence()),
    extension(OID.keyUsage, true, namedBits(usages)),
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(request.publicKey))),
    extension(OID.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyIdentifier(issuer.publicKey)))),
  ];
  if (request.extendedKeyUsages.length > 0) {
    extensions.push(
      extension(OID.extKeyUsage, false, sequence(...request.extendedKeyUsages.map((oid) => objectIdentifier(oid)))),
    );
  }
  if (request.altNames.length > 0) {
    extensions.push(extension(OID.subjectAltName, false, sequence(...request.altNames.map(encodeAltName))));
  }
  return explicit(3, sequence(...extensions));
}

function issueCertificate(request: CertificateRequest, issuer: Issuer, now: Date): string {
  const signatureAlgorithm = sequence(objectIdentifier(OID.ecdsaWithSha256));
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(serial),
    signatureAlgorithm,
    encodeName(issuer.subject),
    sequence(time(new Date(now.getTime() - CLOCK_SKEW_MS)), time(new Date(now.getTime() + VALIDITY_MS))),
    encodeName(request.subject),
    request.publicKey.export({ type: "spki", format: "der" }),
    encodeExtensions(request, issuer),
  );
  const signature = sign("sha256", tbs, issuer.privateKey);
  const der = sequence(tbs, signatureAlgorithm, bitString(signature));
  const base64Lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${base64Lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

const newKey = () => generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const privatePem = (key: KeyObject): string => key.export({ type: "sec1", format: "pem" }).toString();

/** Generates a fresh CA, serving and admin certificates and a service-account key (ECDSA P-256). */
export function createPki(options: { servingAltNames: readonly string[]; now?: Date }): ControlPlanePki {
  const now = options.now ?? new Date();
  const caKey = newKey();
  const caSubject: Subject = { commonName: "stageset-test-ca" };
  const issuer: Issuer = { subject: caSubject, privateKey: caKey.privateKey, publicKey: caKey.publicKey };
  const leaf = (subject: Subject, extendedKeyUsages: readonly string[], altNames: readonly string[]): KeyPair => {
    const key = newKey();
    const certPem = issueCertificate(
      { subject, publicKey: key.publicKey, isCA: false, extendedKeyUsages, altNames },
      issuer,
      now,
    );
    return { keyPem: privatePem(key.privateKey), certPem };
  };
  const saKey = newKey();
  return {
    ca: {
      keyPem: privatePem(caKey.privateKey),
      certPem: issueCertificate(
        { subject: caSubject, publicKey: caKey.publicKey, isCA: true, extendedKeyUsages: [], altNames: [] },
        issuer,
        now,
      ),
    },
    serving: leaf({ commonName: "kube-apiserver" }, [OID.serverAuth], options.servingAltNames),
    admin: leaf({ commonName: "admin", organizations: ["system:masters"] }, [OID.clientAuth], []),
    serviceAccount: {
      privateKeyPem: privatePem(saKey.privateKey),
      publicKeyPem: saKey.publicKey.export({ type: "spki", format: "pem" }).toString(),
    },
  };
}

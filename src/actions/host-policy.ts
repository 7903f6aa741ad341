/**
 * Which hosts an `http` action may reach (`--allowed-action-hosts`), and the
 * address it connects to.
 *
 * An entry is a host glob with an optional port: `hooks.example.com`,
 * `*.example.com`, `gate.internal:8443`, `10.0.0.7`, `[fd00::7]:8080`, `*`.
 * `*` matches one or more characters of the host; an entry without a port
 * allows every port, one with a port only that port (the URL's effective
 * port: 80 for http, 443 for https when it names none).
 *
 * Some destinations are refused even when a glob matches them, because a
 * request there reaches the controller's own machine or the cloud's
 * credentials: loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16,
 * fe80::/10), unspecified ("this network" 0.0.0.0/8, ::), and cloud metadata
 * endpoints (169.254.169.254, fd00:ec2::254, 100.100.100.200 and names such
 * as metadata.google.internal). IPv4-mapped, IPv4-compatible and NAT64 IPv6
 * forms are judged by the IPv4 address they carry. Such a destination is
 * allowed only when it is listed explicitly: an entry without `*` whose host
 * is literally the URL's host, or literally the address the name resolved
 * to (with a matching port when the entry has one).
 *
 * The check applies to the URL's host and, for a name, to every address DNS
 * returns for it; the request then connects to the first checked address
 * (never resolving again, so a rebinding DNS answer cannot move it), and
 * every redirect hop is checked the same way before it is followed.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";

/** One parsed `--allowed-action-hosts` entry. */
export interface HostPattern {
  /** The entry as given. */
  readonly text: string;
  /** Lower-case host; IPv6 without brackets, normalized. */
  readonly host: string;
  /** Undefined: every port. */
  readonly port: number | undefined;
  readonly wildcard: boolean;
  readonly regex: RegExp;
}

/** An address DNS returned (or the URL's IP literal). */
export interface ResolvedAddress {
  address: string;
  /** 4 or 6. */
  family: number;
}

/** Resolves a host name to every address; default `dns.lookup(name, { all: true, verbatim: true })`. */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** The default resolver: the system's (getaddrinfo, /etc/hosts included), every address in its order. */
export const systemResolver: HostResolver = async (hostname) => {
  const answers = await dnsLookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family }));
};

/** Why a destination is refused unless listed explicitly. */
export type SpecialRange = "loopback" | "link-local" | "unspecified" | "cloud metadata";

/** A URL the policy refuses; the message says which host, why, and how to allow it. Never carries a secret. */
export class HostRefusedError extends Error {
  readonly host: string;
  constructor(host: string, message: string) {
    super(message);
    this.name = "HostRefusedError";
    this.host = host;
  }
}

/** Host names of cloud metadata services, refused unless listed explicitly. */
export const METADATA_HOSTNAMES: ReadonlySet<string> = new Set([
  "metadata.google.internal",
  "metadata.goog",
  "metadata",
  "instance-data",
  "instance-data.ec2.internal",
  "metadata.azure.internal",
  "metadata.tencentyun.com",
  "metadata.platformequinix.com",
]);

/**
 * Parses the entries of `--allowed-action-hosts`. Throws TypeError naming an
 * entry that is not a host glob with an optional port.
 */
export function parseAllowedHosts(entries: readonly string[]): HostPattern[] {
  return entries.map(parseEntry);
}

function parseEntry(text: string): HostPattern {
  const raw = text.trim().toLowerCase();
  let host: string;
  let port: number | undefined;
  const bracketed = /^\[([0-9a-f:.]+)\](?::(\d+))?$/.exec(raw);
  if (bracketed) {
    host = normalizeIPv6(bracketed[1]!) ?? bracketed[1]!;
    port = bracketed[2] === undefined ? undefined : Number(bracketed[2]);
  } else if ((raw.match(/:/g) ?? []).length > 1) {
    // A bare IPv6 address: no port possible.
    host = normalizeIPv6(raw) ?? raw;
  } else {
    const colon = raw.lastIndexOf(":");
    host = colon < 0 ? raw : raw.slice(0, colon);
    port = colon < 0 ? undefined : Number(raw.slice(colon + 1));
  }
  if (host === "" || (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535))) {
    throw new TypeError(`--allowed-action-hosts: "${text}" is not a host glob with an optional port, such as *.example.com or gate.internal:8443`);
  }
  if (isIP(host) === 4) host = normalizeIPv4(host) ?? host;
  const wildcard = host.includes("*");
  const regex = new RegExp(`^${host.split("*").map(escapeRegExp).join(".+")}$`);
  return { text, host, port, wildcard, regex };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The host of a URL as the policy compares it: lower case, IPv6 without brackets. */
export function hostOf(url: URL): string {
  const host = url.hostname.toLowerCase();
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** The port a request to `url` uses. */
export function portOf(url: URL): number {
  if (url.port !== "") return Number(url.port);
  return url.protocol === "https:" ? 443 : 80;
}

function portMatches(pattern: HostPattern, port: number): boolean {
  return pattern.port === undefined || pattern.port === port;
}

/**
 * The range an IP address belongs to when it is one the policy guards,
 * undefined for an ordinary address (and for text that is not an IP).
 */
export function specialRangeOf(address: string): SpecialRange | undefined {
  const bare = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  const family = isIP(bare.replace(/%.*$/, ""));
  if (family === 4) return ipv4Range(parseIPv4(bare)!);
  if (family === 6) {
    const bytes = parseIPv6(bare.replace(/%.*$/, ""));
    return bytes ? ipv6Range(bytes) : undefined;
  }
  return undefined;
}

function ipv4Range(b: readonly number[]): SpecialRange | undefined {
  const [a, c, d, e] = b as [number, number, number, number];
  if ((a === 169 && c === 254 && d === 169 && e === 254) || (a === 100 && c === 100 && d === 100 && e === 200)) {
    return "cloud metadata";
  }
  if (a === 127) return "loopback";
  if (a === 0) return "unspecified";
  if (a === 169 && c === 254) return "link-local";
  return undefined;
}

function ipv6Range(b: readonly number[]): SpecialRange | undefined {
  const zeroUpTo = (n: number) => b.slice(0, n).every((x) => x === 0);
  // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (except :: and ::1).
  if (zeroUpTo(10) && b[10] === 0xff && b[11] === 0xff) return ipv4Range(b.slice(12));
  if (zeroUpTo(15) && b[15] === 0) return "unspecified";
  if (zeroUpTo(15) && b[15] === 1) return "loopback";
  if (zeroUpTo(12)) return ipv4Range(b.slice(12));
  // NAT64 64:ff9b::/96 reaches the IPv4 address it carries.
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b.slice(4, 12).every((x) => x === 0)) {
    return ipv4Range(b.slice(12));
  }
  // AWS IMDS over IPv6: fd00:ec2::254.
  const imds = parseIPv6("fd00:ec2::254")!;
  if (b.every((x, i) => x === imds[i])) return "cloud metadata";
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return "link-local";
  return undefined;
}

function parseIPv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  return bytes.every((x) => Number.isInteger(x) && x >= 0 && x <= 255) ? bytes : undefined;
}

function normalizeIPv4(text: string): string | undefined {
  return parseIPv4(text)?.join(".");
}

/** 16 bytes of an IPv6 address (an IPv4 tail allowed), undefined when it is not one. */
function parseIPv6(text: string): number[] | undefined {
  if (isIP(text) !== 6) return undefined;
  let s = text;
  const lastColon = s.lastIndexOf(":");
  const last = s.slice(lastColon + 1);
  if (last.includes(".")) {
    const v4 = parseIPv4(last);
    if (!v4) return undefined;
    const [a, b, c, d] = v4 as [number, number, number, number];
    s = `${s.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string) => (part === "" ? [] : part.split(":").map((g) => parseInt(g, 16)));
  const left = groups(halves[0] ?? "");
  const right = halves.length === 2 ? groups(halves[1] ?? "") : [];
  const words = halves.length === 2 ? [...left, ...new Array<number>(Math.max(0, 8 - left.length - right.length)).fill(0), ...right] : left;
  if (words.length !== 8 || words.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffff)) return undefined;
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

function normalizeIPv6(text: string): string | undefined {
  if (isIP(text) !== 6) return undefined;
  try {
    const host = new URL(`http://[${text}]/`).hostname;
    return host.slice(1, -1);
  } catch {
    return undefined;
  }
}

/** How the URL's host matched the allowed entries. */
export interface HostMatch {
  /** An entry without `*` names this very host (and port). */
  explicit: boolean;
  /** The entries that matched, as given. */
  entries: string[];
}

/**
 * The entries that allow `url`'s host and port. Undefined when none does.
 * An IP literal in the URL matches entries by its normalized form.
 */
export function matchHost(url: URL, patterns: readonly HostPattern[]): HostMatch | undefined {
  const host = hostOf(url);
  const port = portOf(url);
  const matching = patterns.filter((p) => portMatches(p, port) && (p.wildcard ? p.regex.test(host) : p.host === host));
  if (matching.length === 0) return undefined;
  return { explicit: matching.some((p) => !p.wildcard), entries: matching.map((p) => p.text) };
}

/** Whether `address` itself is listed explicitly (an entry without `*` equal to it, port matching). */
function addressListed(address: string, port: number, patterns: readonly HostPattern[]): boolean {
  const normalized = isIP(address) === 6 ? (normalizeIPv6(address) ?? address) : address;
  return patterns.some((p) => !p.wildcard && p.host === normalized && portMatches(p, port));
}

/** `https://hooks.example.com:8443/path`: a URL for messages, without credentials or query. */
export function describeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function allowHint(host: string, port: number): string {
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  return `list "${shown}" or "${shown}:${port}" itself (not a glob) in --allowed-action-hosts to allow it`;
}

/**
 * Checks `url` against the policy and resolves the address to connect to.
 * Resolves the host (when it is a name) with `resolver` exactly once and
 * checks every address it returns. Returns the first address: connect to it
 * and to nothing else.
 *
 * @throws HostRefusedError when the scheme is not http(s), no entry allows
 *   the host, or the host or one of its addresses is in a guarded range and
 *   not listed explicitly; the message names the host (and the address).
 * @throws the resolver's error when the name does not resolve.
 */
export async function checkDestination(
  url: URL,
  patterns: readonly HostPattern[],
  resolver: HostResolver = systemResolver,
): Promise<ResolvedAddress> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new HostRefusedError(url.host, `${url.protocol} URLs are not allowed: use http or https`);
  }
  const host = hostOf(url);
  const port = portOf(url);
  const match = matchHost(url, patterns);
  if (!match) {
    const allowed = patterns.length === 0 ? "no host is allowed (the list is empty)" : `allowed: ${patterns.map((p) => p.text).join(", ")}`;
    throw new HostRefusedError(host, `host ${url.host} is not allowed by --allowed-action-hosts (${allowed})`);
  }
  const family = isIP(host);
  if (family !== 0) {
    const range = specialRangeOf(host);
    if (range && !match.explicit) {
      throw new HostRefusedError(host, `host ${url.host} is a ${range} address, refused unless listed explicitly: ${allowHint(host, port)}`);
    }
    return { address: host, family };
  }
  if (METADATA_HOSTNAMES.has(host.replace(/\.$/, "")) && !match.explicit) {
    throw new HostRefusedError(host, `host ${url.host} is a cloud metadata service, refused unless listed explicitly: ${allowHint(host, port)}`);
  }
  const addresses = await resolver(host);
  if (addresses.length === 0) throw new HostRefusedError(host, `host ${host} resolved to no address`);
  for (const { address } of addresses) {
    const range = specialRangeOf(address);
    if (range && !match.explicit && !addressListed(address, port, patterns)) {
      throw new HostRefusedError(
        host,
        `host ${url.host} resolves to ${address}, a ${range} address, refused unless listed explicitly: ${allowHint(host, port)}`,
      );
    }
  }
  return addresses[0]!;
}

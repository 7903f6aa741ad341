// The http action's host policy: globs, guarded ranges, explicit listing,
// DNS answers checked address by address.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkDestination,
  HostRefusedError,
  matchHost,
  parseAllowedHosts,
  specialRangeOf,
  systemResolver,
  type HostResolver,
} from "../../../src/actions/host-policy.js";

const never: HostResolver = () => Promise.reject(new Error("the resolver must not be called"));
const resolvingTo =
  (...addresses: string[]): HostResolver =>
  async () =>
    addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));

async function refused(url: string, allowed: string[], resolver: HostResolver = never): Promise<string> {
  try {
    await checkDestination(new URL(url), parseAllowedHosts(allowed), resolver);
  } catch (err) {
    assert.ok(err instanceof HostRefusedError, String(err));
    return err.message;
  }
  assert.fail(`${url} was allowed by ${allowed.join(", ")}`);
}

describe("specialRangeOf", () => {
  const cases: [string, string | undefined][] = [
    ["127.0.0.1", "loopback"],
    ["127.200.3.4", "loopback"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["::", "unspecified"],
    ["169.254.1.1", "link-local"],
    ["fe80::1", "link-local"],
    ["febf::1", "link-local"],
    ["169.254.169.254", "cloud metadata"],
    ["fd00:ec2::254", "cloud metadata"],
    ["100.100.100.200", "cloud metadata"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:169.254.169.254", "cloud metadata"],
    ["64:ff9b::a9fe:a9fe", "cloud metadata"],
    ["::127.0.0.1", "loopback"],
    ["8.8.8.8", undefined],
    ["10.1.2.3", undefined],
    ["192.168.1.1", undefined],
    ["2001:db8::1", undefined],
    ["fec0::1", undefined],
    ["fd00::1", undefined],
    ["example.com", undefined],
  ];
  for (const [address, range] of cases) {
    it(`${address} -> ${range ?? "ordinary"}`, () => assert.equal(specialRangeOf(address), range));
  }
});

describe("parseAllowedHosts and matchHost", () => {
  it("parses hosts, globs, ports and IPv6 literals", () => {
    const [a, b, c, d, e] = parseAllowedHosts(["Hooks.Example.com", "*.example.com:8443", "[::1]:9000", "[0:0::1]", "10.0.0.7"]);
    assert.deepEqual([a?.host, a?.port, a?.wildcard], ["hooks.example.com", undefined, false]);
    assert.deepEqual([b?.host, b?.port, b?.wildcard], ["*.example.com", 8443, true]);
    assert.deepEqual([c?.host, c?.port], ["::1", 9000]);
    assert.deepEqual([d?.host, d?.port], ["::1", undefined]);
    assert.deepEqual([e?.host, e?.port], ["10.0.0.7", undefined]);
  });

  it("refuses an entry that is not a host with an optional port", () => {
    assert.throws(() => parseAllowedHosts(["example.com:99999"]), /not a host glob/);
    assert.throws(() => parseAllowedHosts([":80"]), /not a host glob/);
  });

  it("matches globs by host and, when the entry has one, by the URL's effective port", () => {
    const patterns = parseAllowedHosts(["*.example.com:443", "gate.internal"]);
    assert.ok(matchHost(new URL("https://a.example.com/x"), patterns));
    assert.ok(matchHost(new URL("https://a.b.example.com/x"), patterns));
    assert.equal(matchHost(new URL("http://a.example.com/x"), patterns), undefined, "port 80 is not 443");
    assert.equal(matchHost(new URL("https://example.com/x"), patterns), undefined, "* needs at least one character");
    assert.equal(matchHost(new URL("https://a.example.com.evil.io/x"), patterns), undefined);
    assert.deepEqual(matchHost(new URL("http://gate.internal:1234/"), patterns), { explicit: true, entries: ["gate.internal"] });
    assert.deepEqual(matchHost(new URL("https://a.example.com/"), patterns), { explicit: false, entries: ["*.example.com:443"] });
  });
});

describe("checkDestination", () => {
  it("refuses a host no entry allows, naming it and the entries", async () => {
    assert.match(await refused("https://evil.io/", ["*.example.com"]), /host evil\.io is not allowed by --allowed-action-hosts \(allowed: \*\.example\.com\)/);
    assert.match(await refused("https://evil.io/", []), /no host is allowed/);
  });

  it("refuses loopback, unspecified, link-local and metadata literals matched by a glob", async () => {
    assert.match(await refused("http://127.0.0.1:8080/", ["*"]), /127\.0\.0\.1:8080 is a loopback address, refused unless listed explicitly/);
    assert.match(await refused("http://[::1]:8080/", ["*"]), /is a loopback address/);
    assert.match(await refused("http://0.0.0.0/", ["*"]), /unspecified/);
    assert.match(await refused("http://[::]/", ["*"]), /unspecified/);
    assert.match(await refused("http://169.254.169.254/latest/meta-data/", ["*"]), /cloud metadata/);
    assert.match(await refused("http://[fd00:ec2::254]/", ["*"]), /cloud metadata/);
    assert.match(await refused("http://169.254.10.10/", ["169.254.*"]), /link-local/);
    assert.match(await refused("http://[fe80::1]/", ["*"]), /link-local/);
    assert.match(await refused("http://127.0.0.1/", ["127.0.0.*"]), /loopback/, "a glob never counts as explicit");
  });

  it("sees through the spellings the URL parser normalizes: hex, decimal and IPv4-mapped forms", async () => {
    assert.match(await refused("http://0x7f.1/", ["*"]), /127\.0\.0\.1 is a loopback address/);
    assert.match(await refused("http://2130706433/", ["*"]), /127\.0\.0\.1 is a loopback address/);
    assert.match(await refused("http://[::ffff:127.0.0.1]/", ["*"]), /loopback/);
    assert.match(await refused("http://[::ffff:a9fe:a9fe]/", ["*"]), /cloud metadata/);
  });

  it("refuses metadata service names before resolving them", async () => {
    assert.match(await refused("http://metadata.google.internal/computeMetadata/v1/", ["*"]), /cloud metadata service/);
    assert.match(await refused("http://metadata.google.internal./", ["*.internal."]), /cloud metadata service/);
  });

  it("checks every address a name resolves to", async () => {
    assert.match(await refused("http://app.example.com/", ["*.example.com"], resolvingTo("127.0.0.1")), /app\.example\.com resolves to 127\.0\.0\.1, a loopback address/);
    assert.match(await refused("http://app.example.com/", ["*.example.com"], resolvingTo("93.184.216.34", "169.254.169.254")), /resolves to 169\.254\.169\.254, a cloud metadata address/);
    assert.match(await refused("http://app.example.com/", ["*.example.com"], resolvingTo("::ffff:127.0.0.1")), /loopback/);
  });

  it("refuses localhost through the system resolver", async () => {
    assert.match(await refused("http://localhost:8080/", ["*"], systemResolver), /localhost:8080 resolves to (127\.0\.0\.1|::1), a loopback address/);
  });

  it("allows a guarded destination listed explicitly: the host itself, or the address it resolves to", async () => {
    const patterns = parseAllowedHosts(["127.0.0.1:8080", "[::1]", "hooks.internal", "*.example.com", "169.254.169.254"]);
    assert.deepEqual(await checkDestination(new URL("http://127.0.0.1:8080/"), patterns, never), { address: "127.0.0.1", family: 4 });
    assert.deepEqual(await checkDestination(new URL("http://[::1]:9/"), patterns, never), { address: "::1", family: 6 });
    assert.deepEqual(await checkDestination(new URL("http://hooks.internal/"), patterns, resolvingTo("127.0.0.5")), { address: "127.0.0.5", family: 4 });
    assert.deepEqual(
      await checkDestination(new URL("http://imds.example.com/"), patterns, resolvingTo("169.254.169.254")),
      { address: "169.254.169.254", family: 4 },
      "the address is listed explicitly",
    );
    await assert.rejects(checkDestination(new URL("http://127.0.0.1:8081/"), patterns, never), /not allowed/, "the listing names port 8080");
    await assert.rejects(checkDestination(new URL("http://a.example.com:8081/"), patterns, resolvingTo("127.0.0.1")), /loopback/, "127.0.0.1 is listed for port 8080 only");
  });

  it("returns the first checked address and resolves once", async () => {
    let calls = 0;
    const resolver: HostResolver = async () => {
      calls++;
      return [
        { address: "93.184.216.34", family: 4 },
        { address: "2606:2800:220:1::1", family: 6 },
      ];
    };
    assert.deepEqual(await checkDestination(new URL("https://www.example.com/"), parseAllowedHosts(["*.example.com"]), resolver), {
      address: "93.184.216.34",
      family: 4,
    });
    assert.equal(calls, 1);
  });

  it("refuses schemes other than http and https", async () => {
    assert.match(await refused("file:///etc/passwd", ["*"]), /file: URLs are not allowed/);
  });
});

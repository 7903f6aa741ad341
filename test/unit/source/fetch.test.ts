import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ArtifactError } from "../../../src/errors.js";
import type { Artifact } from "../../../src/source/artifact.js";
import { computeDigest, DIGEST_ALGORITHMS } from "../../../src/source/digest.js";
import { fetchArtifact, type FetchOptions } from "../../../src/source/fetch.js";
import { waitFor } from "../../support/wait.js";
import { ArtifactServer } from "./helpers/artifact-server.js";
import { tarGz } from "./helpers/tarball.js";

const server = new ArtifactServer();
const body = tarGz([{ path: "deploy.yaml", content: "kind: Deployment\n" }]);
let work: string;
let counter = 0;

/** Fast retries so the suite stays quick; the backoff shape is not under test here. */
const FAST: FetchOptions = { backoff: { initialMs: 5, maxMs: 20 }, timeoutMs: 2000 };

before(async () => {
  await server.start();
  work = await mkdtemp(join(tmpdir(), "fetch-test-"));
});

after(async () => {
  await server.stop();
  await rm(work, { recursive: true, force: true });
});

async function parent(): Promise<string> {
  const dir = join(work, `p${++counter}`);
  await mkdir(dir);
  return dir;
}

function artifactAt(url: string, digest = computeDigest("sha256", body)): Artifact {
  return { url, revision: "main@sha1:0123456789abcdef0123456789abcdef01234567", digest };
}

function artifactError(pattern: RegExp, terminal?: boolean) {
  return (err: unknown) =>
    err instanceof ArtifactError &&
    err.reason === "ArtifactFailed" &&
    pattern.test(err.message) &&
    (terminal === undefined || err.terminal === terminal);
}

describe("fetchArtifact", () => {
  it("downloads to a temporary file and verifies the digest", async () => {
    const url = server.serve("/ok.tar.gz", body);
    const parentDir = await parent();
    const fetched = await fetchArtifact(artifactAt(url), { ...FAST, parentDir });
    assert.deepEqual(await readFile(fetched.path), body);
    assert.equal(fetched.bytes, body.length);
    await fetched.remove();
    assert.deepEqual(await readdir(parentDir), []);
  });

  for (const algorithm of DIGEST_ALGORITHMS) {
    it(`verifies a ${algorithm} digest`, async () => {
      const url = server.serve(`/algo-${algorithm}.tar.gz`, body);
      const fetched = await fetchArtifact(artifactAt(url, computeDigest(algorithm, body)), FAST);
      await fetched.remove();
      const wrong = computeDigest(algorithm, Buffer.from("something else"));
      await assert.rejects(fetchArtifact(artifactAt(url, wrong), FAST), artifactError(new RegExp(`digest mismatch: expected ${algorithm}:`)));
    });
  }

  it("reports a digest mismatch with both digests abbreviated, and leaves no file behind", async () => {
    const url = server.serve("/tampered.tar.gz", body);
    const expected = computeDigest("sha256", Buffer.from("the real artifact"));
    const parentDir = await parent();
    await assert.rejects(fetchArtifact(artifactAt(url, expected), { ...FAST, parentDir }), (err: unknown) => {
      assert.ok(err instanceof ArtifactError);
      const actual = computeDigest("sha256", body);
      assert.match(err.message, /^artifact http:\/\/127\.0\.0\.1:\d+\/tampered\.tar\.gz \(revision main@sha1:0123/);
      assert.ok(err.message.includes(`expected ${expected.slice(0, 7 + 12)}…, got ${actual.slice(0, 7 + 12)}…`), err.message);
      return true;
    });
    assert.equal(server.hitsOf("/tampered.tar.gz"), 1, "a digest mismatch is not retried");
    assert.deepEqual(await readdir(parentDir), []);
  });

  it("retries after a 503 and then succeeds", async () => {
    const url = server.route("/flaky.tar.gz", (_req, res, attempt) => {
      if (attempt < 3) res.writeHead(503).end("busy");
      else res.writeHead(200).end(body);
    });
    const fetched = await fetchArtifact(artifactAt(url), { ...FAST, retries: 3 });
    assert.equal(server.hitsOf("/flaky.tar.gz"), 3);
    await fetched.remove();
  });

  it("honours Retry-After on 429", async () => {
    const url = server.route("/throttled.tar.gz", (_req, res, attempt) => {
      if (attempt === 1) res.writeHead(429, { "retry-after": "0" }).end();
      else res.writeHead(200).end(body);
    });
    const fetched = await fetchArtifact(artifactAt(url), { ...FAST, backoff: { initialMs: 60_000, maxMs: 60_000 } });
    assert.equal(server.hitsOf("/throttled.tar.gz"), 2);
    await fetched.remove();
  });

  it("gives up after the configured retries, naming the status and the attempts", async () => {
    const url = server.route("/down.tar.gz", (_req, res) => void res.writeHead(502, "Bad Gateway").end());
    await assert.rejects(fetchArtifact(artifactAt(url), { ...FAST, retries: 2 }), artifactError(/HTTP 502 Bad Gateway \(after 3 attempts\)$/, false));
    assert.equal(server.hitsOf("/down.tar.gz"), 3);
  });

  it("follows redirects to the artifact, and gives up on a loop or a location that is not http(s)", async () => {
    const target = server.serve("/moved/final.tar.gz", body);
    const hop = server.route("/hop.tar.gz", (_req, res) => res.writeHead(307, { location: "/moved/final.tar.gz" }).end());
    const first = server.route("/first.tar.gz", (_req, res) => res.writeHead(302, { location: hop }).end());
    const fetched = await fetchArtifact(artifactAt(first), { ...FAST, parentDir: await parent() });
    assert.deepEqual(await readFile(fetched.path), body);
    assert.equal(server.hitsOf("/moved/final.tar.gz"), 1);
    assert.ok(target.endsWith("/moved/final.tar.gz"));
    await fetched.remove();

    const loop = server.route("/loop.tar.gz", (_req, res) => res.writeHead(301, { location: "/loop.tar.gz" }).end());
    await assert.rejects(fetchArtifact(artifactAt(loop), { ...FAST, retries: 3 }), artifactError(/stopped after 10 redirects \(after 1 attempt\)$/, true));
    assert.equal(server.hitsOf("/loop.tar.gz"), 11);
    const elsewhere = server.route("/to-file.tar.gz", (_req, res) => res.writeHead(302, { location: "file:///etc/passwd" }).end());
    await assert.rejects(fetchArtifact(artifactAt(elsewhere), FAST), artifactError(/HTTP 302 redirects to a location that is not an http or https URL/, true));
  });

  it("does not retry a 404", async () => {
    const url = server.url("/gone.tar.gz");
    await assert.rejects(fetchArtifact(artifactAt(url), { ...FAST, retries: 3 }), artifactError(/HTTP 404 Not Found \(after 1 attempt\)$/));
    assert.equal(server.hitsOf("/gone.tar.gz"), 1);
  });

  it("times out an attempt that stalls, and retries it", async () => {
    const url = server.route("/slow.tar.gz", (_req, res) => {
      res.writeHead(200, { "content-length": body.length });
      res.write(body.subarray(0, 10)); // and never the rest
    });
    await assert.rejects(
      fetchArtifact(artifactAt(url), { ...FAST, timeoutMs: 200, retries: 1 }),
      artifactError(/timed out after 200ms \(after 2 attempts\)$/, false),
    );
    assert.equal(server.hitsOf("/slow.tar.gz"), 2);
  });

  it("retries a refused connection", async () => {
    const closed = new ArtifactServer();
    await closed.start();
    const url = closed.url("/x.tar.gz");
    await closed.stop();
    await assert.rejects(fetchArtifact(artifactAt(url), { ...FAST, retries: 1 }), artifactError(/ECONNREFUSED.*\(after 2 attempts\)$/));
  });

  it("refuses a download larger than the cap, announced or not", async () => {
    const announced = server.serve("/big.tar.gz", body);
    await assert.rejects(
      fetchArtifact(artifactAt(announced), { ...FAST, maxBytes: 10 }),
      artifactError(/announces \d+ bytes, more than the limit of 10/, true),
    );
    const chunked = server.route("/big-chunked.tar.gz", (_req, res) => {
      res.writeHead(200);
      res.write(body.subarray(0, 20));
      res.end(body.subarray(20));
    });
    await assert.rejects(fetchArtifact(artifactAt(chunked), { ...FAST, maxBytes: 10 }), artifactError(/exceeds the limit of 10 bytes/, true));
    assert.equal(server.hitsOf("/big-chunked.tar.gz"), 1);
    await assert.rejects(
      fetchArtifact({ ...artifactAt(announced), size: 11 }, { ...FAST, maxBytes: 10 }),
      artifactError(/reported size 11 bytes exceeds the limit of 10 bytes/, true),
    );
  });

  it("refuses URLs that are not http or https, and unsupported digests", async () => {
    await assert.rejects(fetchArtifact(artifactAt("file:///etc/passwd"), FAST), artifactError(/only http and https/, true));
    await assert.rejects(fetchArtifact(artifactAt(server.url("/ok.tar.gz"), "md5:d41d8cd98f00b204e9800998ecf8427e"), FAST), artifactError(/unsupported algorithm "md5"/, true));
  });

  it("keeps credentials and query strings out of its messages", async () => {
    const url = server.url("/secret.tar.gz").replace("http://", "http://user:hunter2@") + "?X-Amz-Signature=abc123";
    await assert.rejects(fetchArtifact(artifactAt(url), FAST), (err: unknown) => {
      assert.ok(err instanceof ArtifactError);
      assert.match(err.message, /embedded credentials are not supported/);
      assert.doesNotMatch(err.message, /hunter2|abc123|user:/);
      return true;
    });
    const presigned = server.url("/missing.tar.gz") + "?X-Amz-Signature=abc123";
    await assert.rejects(fetchArtifact(artifactAt(presigned), FAST), (err: unknown) => {
      assert.ok(err instanceof ArtifactError);
      assert.doesNotMatch(err.message, /abc123/);
      return true;
    });
  });

  it("stops when its signal aborts, without further attempts", async () => {
    const url = server.route("/hang.tar.gz", () => undefined);
    const controller = new AbortController();
    const pending = fetchArtifact(artifactAt(url), { ...FAST, timeoutMs: 10_000, retries: 5, signal: controller.signal });
    // Abort once the request is in flight (the server has it and never answers).
    await waitFor(() => server.hitsOf("/hang.tar.gz") === 1, { description: "the request to reach the server", timeoutMs: 10_000, intervalMs: 5 });
    controller.abort(new Error("shutting down"));
    await assert.rejects(pending, /shutting down/);
    assert.equal(server.hitsOf("/hang.tar.gz"), 1);
  });
});

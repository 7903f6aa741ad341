// Hostile artifacts on the controller's own path (HTTP → digest → cache →
// unpack → build → status) and on the CLI's (`stagesetctl build -f
// --source-dir`): each is refused with its reason and a message naming the
// problem; no canary file outside the artifact is ever read (one at an
// absolute path, one next to the artifact cache), no connection reaches the
// canary server, and nothing is applied. One row per hostile kind.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { after, before, describe, test } from "node:test";
import type { KubeObject } from "../../src/api/types.js";
import { tarHeader } from "../support/artifact-server.js";
import { runCli } from "../support/cli.js";
import { createTestNamespace } from "../support/cluster.js";
import { startTestController } from "../support/controller.js";
import { publishExternalArtifact } from "../support/flux.js";
import { readyCondition, STAGESET, usePipelineFixture, waitForReason } from "../support/pipeline.js";

/** A file tree entry: a file's content, or `{ link }` for a symlink. */
type Entry = string | { link: string };

interface HostileCase {
  name: string;
  /** The artifact's files; `CANARY` and `PORT` are replaced per run. */
  files: Record<string, Entry>;
  /** Bytes appended to the tar stream after its end-of-archive marker. */
  trailing?: number;
  /** Succeeded: a bounded case that must complete (quickly) rather than be refused. */
  reason: "ArtifactFailed" | "BuildFailed" | "Succeeded";
  message: RegExp;
  /** postBuild.substitute of the stage. */
  substitute?: Record<string, string>;
  /** Text that must appear nowhere (status, events, CLI output): a Secret-like value. */
  secret?: string;
  /** Not expressible as a source directory (tar-level cases): controller path only. */
  tarOnly?: boolean;
}

const CANARY_TEXT = "canary-0f9e-never-read";

const CASES: HostileCase[] = [
  {
    name: "a generator config reads an absolute path",
    files: {
      "kustomization.yaml": "generators:\n- gen.yaml\n",
      "gen.yaml": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: leak\nfiles:\n- stolen=CANARY\n",
    },
    reason: "BuildFailed",
    message: /refused to read .*resolves outside the artifact/,
  },
  {
    name: "an inline generator reads through a YAML merge key",
    files: {
      "kustomization.yaml": "configMapGenerator:\n- <<: {name: leak, files: [stolen=CANARY]}\n",
    },
    reason: "BuildFailed",
    message: /refused to read .*resolves outside the artifact/,
  },
  {
    name: "a resource through a symlink that leaves the artifact",
    files: { "kustomization.yaml": "resources:\n- out/cm.yaml\n", out: { link: "/" } },
    reason: "ArtifactFailed",
    message: /symlink "out" points (to the absolute path|outside the artifact)/,
  },
  {
    name: "a reverse symlink chain (p -> q/.., then q -> .)",
    files: { "kustomization.yaml": "resources: []\n", p: { link: "q/.." }, q: { link: "." } },
    reason: "ArtifactFailed",
    message: /symlink "p" .*points outside the artifact/,
    tarOnly: true,
  },
  {
    name: "a remote resource over http",
    files: { "kustomization.yaml": "resources:\n- http://127.0.0.1:PORT/remote/cm.yaml\n" },
    reason: "BuildFailed",
    message: /http:\/\/127\.0\.0\.1:\d+\/remote\/cm\.yaml/,
  },
  {
    name: "a remote git base",
    files: { "kustomization.yaml": "resources:\n- git::http://127.0.0.1:PORT/repo.git//base?ref=main\n" },
    reason: "BuildFailed",
    message: /git::http:\/\/127\.0\.0\.1:\d+\/repo\.git/,
  },
  {
    name: "a github shorthand component",
    files: { "kustomization.yaml": "components:\n- github.com/example/components/web?ref=v1\n" },
    reason: "BuildFailed",
    message: /github\.com\/example\/components\/web/,
  },
  {
    name: "a YAML alias bomb",
    files: {
      "kustomization.yaml": "resources:\n- bomb.yaml\n",
      "bomb.yaml": [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: bomb}",
        'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
        ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`),
        "",
      ].join("\n"),
    },
    reason: "BuildFailed",
    message: /alias/i,
  },
  {
    name: "deep nesting",
    files: { "kustomization.yaml": "resources:\n- deep.yaml\n", "deep.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: ${"[".repeat(100_000)}${"]".repeat(100_000)}\n` },
    reason: "BuildFailed",
    message: /max depth|nest/i,
  },
  {
    name: "megabytes after the tar end-of-archive marker",
    files: { "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n" },
    trailing: 64 * 1024 * 1024,
    reason: "ArtifactFailed",
    message: /more than \d+ bytes after its end-of-archive marker/,
    tarOnly: true,
  },
  {
    name: "a substitution trim that backtracks exponentially in a regex engine",
    files: { "cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: trim}\ndata:\n  v: "\${v##${"*a".repeat(24)}*b}"\n` },
    substitute: { v: "a".repeat(5000) },
    reason: "Succeeded",
    message: /applied 1 stage/,
  },
  {
    name: "a substituted value that breaks the YAML (a Secret-like value starting with *)",
    files: { "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata:\n  token: ${token}\n" },
    substitute: { token: "*Sup3rS3cretValue" },
    secret: "Sup3rS3cretValue",
    reason: "BuildFailed",
    message: /token/,
  },
];

/** A gzipped tar of `files` (symlinks included), with `trailing` zero bytes after the end marker. */
function tarball(files: Record<string, Entry>, trailing = 0): Buffer {
  const blocks: Buffer[] = [];
  for (const [path, entry] of Object.entries(files)) {
    if (typeof entry === "string") {
      const body = Buffer.from(entry, "utf8");
      blocks.push(tarHeader(path, body.length, "0"), body, Buffer.alloc((512 - (body.length % 512)) % 512));
    } else {
      blocks.push(tarHeader(path, 0, "2", entry.link));
    }
  }
  blocks.push(Buffer.alloc(1024), Buffer.alloc(trailing));
  return gzipSync(Buffer.concat(blocks));
}

function writeTree(dir: string, files: Record<string, Entry>): void {
  for (const [path, entry] of Object.entries(files)) {
    const target = join(dir, path);
    mkdirSync(join(target, ".."), { recursive: true });
    if (typeof entry === "string") writeFileSync(target, entry);
    else symlinkSync(entry.link, target);
  }
}

describe("hostile inputs", { concurrency: true }, () => {
  const fixture = usePipelineFixture();
  const canaryDir = mkdtempSync(join(tmpdir(), "stageset-canary-"));
  const canaryFile = join(canaryDir, "secret.txt");
  // Next to the artifact cache's own directories (os.tmpdir()): a climb out of an artifact would find it.
  const besideCache = join(tmpdir(), "stageset-artifacts-canary.txt");
  let canary: Server;
  let hits = 0;
  let port = 0;

  before(async () => {
    writeFileSync(canaryFile, CANARY_TEXT);
    writeFileSync(besideCache, CANARY_TEXT);
    canary = createServer((req, res) => {
      hits++;
      res.writeHead(200).end(`apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fetched}\ndata: {v: ${CANARY_TEXT}}\n`);
    });
    canary.on("connection", () => hits++);
    await new Promise<void>((resolve) => canary.listen(0, "127.0.0.1", resolve));
    port = (canary.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise<void>((resolve) => canary.close(() => resolve()));
    rmSync(canaryDir, { recursive: true, force: true });
    rmSync(besideCache, { force: true });
  });

  const materialize = (files: Record<string, Entry>): Record<string, Entry> =>
    Object.fromEntries(
      Object.entries(files).map(([k, v]) => [k, typeof v === "string" ? v.replaceAll("CANARY", canaryFile).replaceAll("PORT", String(port)) : v]),
    );

  test("on the controller's path: each case ends in its reason and message, reads and fetches nothing, applies nothing", async (t) => {
    const namespace = await createTestNamespace(fixture.cluster, "hostile");
    const { client, server } = fixture;
    const controller = await startTestController(fixture.cluster, namespace);
    try {
      for (const [i, c] of CASES.entries()) {
        const name = `case-${i}`;
        const published = server.addTarball(`${namespace}-${name}`, tarball(materialize(c.files), c.trailing), "r1");
        await publishExternalArtifact(client, namespace, name, published);
        const started = performance.now();
        const postBuild = c.substitute ? { postBuild: { substitute: c.substitute } } : {};
        await client.create({ ...STAGESET, metadata: { name, namespace }, spec: { stages: [{ name: "app", sourceRef: { name }, ...postBuild }] } });
        const s = await waitForReason(client, namespace, name, c.reason, 90_000);
        const message = readyCondition(s)?.message ?? "";
        assert.match(message, c.message, `${c.name}: ${message}`);
        assert.ok(!message.includes(CANARY_TEXT), `${c.name}: the canary is not in the message`);
        if (c.secret) assert.ok(!message.includes(c.secret), `${c.name}: the value is not in the message`);
        t.diagnostic(`${c.name}: ${c.reason} after ${Math.round(performance.now() - started)}ms`);
      }
      const configMaps = await client.list("v1", "ConfigMap", { namespace });
      assert.ok(!JSON.stringify(configMaps.items).includes(CANARY_TEXT), "no canary content was applied");
      assert.deepEqual(
        configMaps.items.map((o: KubeObject) => o.metadata.name).filter((n) => n !== "kube-root-ca.crt"),
        ["trim"],
        "nothing of a refused artifact was applied",
      );
      const events = JSON.stringify((await client.list("v1", "Event", { namespace })).items);
      assert.ok(!events.includes(CANARY_TEXT), "no canary content in events");
      for (const c of CASES) if (c.secret) assert.ok(!events.includes(c.secret), `${c.name}: the value is in no event`);
      assert.equal(hits, 0, "no connection reached the canary server");
    } finally {
      await controller.stop();
    }
  });

  test("on the CLI's path (build -f --source-dir): the same cases are refused, offline", async () => {
    for (const c of CASES.filter((x) => !x.tarOnly)) {
      const dir = mkdtempSync(join(tmpdir(), "stageset-hostile-cli-"));
      try {
        writeTree(join(dir, "src"), materialize(c.files));
        const substitute = c.substitute ? `    postBuild:\n      substitute: ${JSON.stringify(c.substitute)}\n` : "";
        writeFileSync(
          join(dir, "stageset.yaml"),
          `apiVersion: stages.metio.wtf/v1\nkind: StageSet\nmetadata: {name: hostile, namespace: default}\nspec:\n  stages:\n  - name: app\n    sourceRef: {name: src}\n${substitute}`,
        );
        const result = await runCli(["build", "-f", join(dir, "stageset.yaml"), "--source-dir", `app=${join(dir, "src")}`], { kubeconfig: "/nonexistent" });
        const output = `${result.stdout}${result.stderr}`;
        assert.ok(!output.includes(CANARY_TEXT), `${c.name}: no canary in the output`);
        if (c.secret) assert.ok(!result.stderr.includes(c.secret), `${c.name}: the value is not in the error`);
        if (c.reason === "Succeeded") {
          assert.equal(result.code, 0, `${c.name}: ${result.stderr}`);
          continue;
        }
        assert.equal(result.code, 3, `${c.name}: exit 3, got ${result.code}: ${output}`);
        const refusal = c.reason === "ArtifactFailed" ? /symlink|outside the (artifact|source)/ : c.message;
        assert.match(result.stderr, refusal, `${c.name}: ${result.stderr}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    assert.equal(hits, 0, "no connection reached the canary server");
  });
});

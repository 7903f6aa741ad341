import assert from "node:assert/strict";
import { test } from "node:test";
import type { KubeObject } from "../../../src/api/types.js";
import { hasMaskedValues, hideFingerprints, maskSecret, maskSecretForDiff } from "../../../src/cli/secrets.js";
import { toYaml, toYamlStream } from "../../../src/cli/yaml-output.js";

const secret = (data: Record<string, string>, stringData?: Record<string, string>): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "creds", namespace: "apps" },
  data,
  ...(stringData ? { stringData } : {}),
});

test("Secret data and stringData values are masked, keys kept, the input untouched", () => {
  const input = secret({ token: "aHVudGVyMg==" }, { password: "hunter2" });
  const masked = maskSecret(input);
  assert.deepEqual(masked.data, { token: "***" });
  assert.deepEqual(masked.stringData, { password: "***" });
  assert.equal((input.data as Record<string, string>).token, "aHVudGVyMg==");
  assert.ok(hasMaskedValues(input));
});

test("other kinds, and a Secret-named kind of another group, are left alone", () => {
  const configMap: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { a: "b" } };
  assert.equal(maskSecret(configMap), configMap);
  const sealed: KubeObject = { apiVersion: "example.io/v1", kind: "Secret", metadata: { name: "s" }, data: { a: "b" } };
  assert.equal(maskSecret(sealed), sealed);
});

test("diff masking tells changed values apart but prints only ***", () => {
  const before = toYaml(maskSecretForDiff(secret({ token: "b2xk" })));
  const after = toYaml(maskSecretForDiff(secret({ token: "bmV3" })));
  assert.notEqual(before, after);
  assert.equal(toYaml(maskSecretForDiff(secret({ token: "b2xk" }))), before);
  assert.equal(hideFingerprints(before), hideFingerprints(after));
  assert.ok(!hideFingerprints(before).includes("b2xk"));
  assert.match(hideFingerprints(before), /token: "\*\*\*"/);
});

test("the YAML stream opens each document with --- and says how to reveal masked values", () => {
  const text = toYamlStream([secret({ token: "c2VjcmV0" }), { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" } }], false);
  assert.equal(text.match(/^---$/gm)?.length, 2);
  assert.ok(!text.includes("c2VjcmV0"));
  assert.match(text, /pass --show-secrets/);
  assert.match(toYamlStream([secret({ token: "c2VjcmV0" })], true), /token: c2VjcmV0/);
});

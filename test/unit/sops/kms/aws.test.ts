// AWS KMS at the client boundary, for what local-kms (the real server of
// test/integration/sops-kms.test.ts) cannot show: an entry's `role` is
// assumed through STS first (a loopback STS answers AssumeRole, a loopback
// KMS checks that Decrypt is signed with the assumed credentials), and how
// service errors map. Endpoints come only from AWS_ENDPOINT_URL_STS /
// AWS_ENDPOINT_URL_KMS, as in production.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { DecryptionError } from "../../../../src/errors.js";
import { AwsKmsProvider, encryptionContext } from "../../../../src/sops/kms/aws.js";
import { startLoopback, type Loopback, type RecordedRequest } from "./loopback.js";

const DATA_KEY = Buffer.from("0123456789ABCDEF0123456789ABCDEF");
const ARN = "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ROLE = "arn:aws:iam::123456789012:role/sops-decrypt";
const BLOB = Buffer.from("AQICAHh-ciphertext-blob-bytes");
const ENC = BLOB.toString("base64");
let sts: Loopback;
let kms: Loopback;
const savedEnv = { ...process.env };

function assumeRole(req: RecordedRequest) {
  const form = new URLSearchParams(req.body);
  if (form.get("Action") !== "AssumeRole") return { status: 400, body: "unexpected action" };
  if (form.get("RoleArn") !== ROLE) {
    return {
      status: 403,
      headers: { "content-type": "text/xml" },
      body: `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/ci is not authorized to perform: sts:AssumeRole on resource: ${form.get("RoleArn")}</Message></Error><RequestId>r</RequestId></ErrorResponse>`,
    };
  }
  return {
    status: 200,
    headers: { "content-type": "text/xml" },
    body: `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>ASIAASSUMEDROLE</AccessKeyId><SecretAccessKey>assumed-secret</SecretAccessKey><SessionToken>assumed-session-token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA:${form.get("RoleSessionName")}</AssumedRoleId><Arn>${ROLE}</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>`,
  };
}

function decrypt(req: RecordedRequest) {
  if (req.headers["x-amz-target"] !== "TrentService.Decrypt") return { status: 400, body: { __type: "UnknownOperationException" } };
  const body = JSON.parse(req.body) as { KeyId?: string; CiphertextBlob?: string; EncryptionContext?: Record<string, string> };
  if (body.CiphertextBlob !== ENC) return { status: 400, body: { __type: "InvalidCiphertextException", message: "" } };
  return { status: 200, body: { KeyId: ARN, Plaintext: DATA_KEY.toString("base64"), EncryptionAlgorithm: "SYMMETRIC_DEFAULT" } };
}

describe("AWS KMS provider (client boundary)", () => {
  before(async () => {
    sts = await startLoopback(assumeRole);
    kms = await startLoopback(decrypt);
    process.env.AWS_ACCESS_KEY_ID = "AKIAMASTER";
    process.env.AWS_SECRET_ACCESS_KEY = "master-secret";
    process.env.AWS_ENDPOINT_URL_STS = sts.url;
    process.env.AWS_ENDPOINT_URL_KMS = kms.url;
    process.env.AWS_EC2_METADATA_DISABLED = "true";
    process.env.AWS_CONFIG_FILE = "/nonexistent/aws-config";
    process.env.AWS_SHARED_CREDENTIALS_FILE = "/nonexistent/aws-credentials";
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;
  });
  after(async () => {
    process.env = savedEnv;
    await sts.close();
    await kms.close();
  });
  beforeEach(() => {
    sts.requests.length = 0;
    kms.requests.length = 0;
    kms.setHandler(decrypt);
  });

  test("Decrypt carries KeyId, the blob and the context; the region comes from the ARN", async () => {
    const key = await new AwsKmsProvider().decryptDataKey({ arn: ARN, enc: ENC, context: { Environment: "prod" } });
    assert.deepEqual(key, DATA_KEY);
    const [req] = kms.requests;
    assert.ok(req);
    assert.deepEqual(JSON.parse(req.body), { KeyId: ARN, CiphertextBlob: ENC, EncryptionContext: { Environment: "prod" } });
    assert.match(String(req.headers.authorization), /Credential=AKIAMASTER\/\d{8}\/us-east-2\/kms\/aws4_request/);
    assert.equal(sts.requests.length, 0);
  });

  test("with `role`, the role is assumed through STS and Decrypt is signed with its credentials", async () => {
    const key = await new AwsKmsProvider().decryptDataKey({ arn: ARN, role: ROLE, enc: ENC });
    assert.deepEqual(key, DATA_KEY);
    assert.equal(sts.requests.length, 1);
    const form = new URLSearchParams(sts.requests[0]?.body);
    assert.equal(form.get("RoleArn"), ROLE);
    assert.match(form.get("RoleSessionName") ?? "", /^sops@[\w+=,.@-]*$/);
    assert.match(String(sts.requests[0]?.headers.authorization), /Credential=AKIAMASTER\//);
    const [req] = kms.requests;
    assert.match(String(req?.headers.authorization), /Credential=ASIAASSUMEDROLE\/\d{8}\/us-east-2\/kms\//);
    assert.equal(req?.headers["x-amz-security-token"], "assumed-session-token");
  });

  test("a role the controller may not assume: DecryptionError naming key and role", async () => {
    const other = "arn:aws:iam::123456789012:role/not-mine";
    await assert.rejects(new AwsKmsProvider().decryptDataKey({ arn: ARN, role: other, enc: ENC }), (err: unknown) => {
      assert.ok(err instanceof DecryptionError, `a DecryptionError, got ${String(err)}`);
      assert.match(err.message, new RegExp(`AWS KMS key ${ARN} \\(role ${other}\\): .*AccessDenied`));
      return true;
    });
    assert.equal(kms.requests.length, 0);
  });

  test("KMS refusals map to DecryptionError with the service's error name", async () => {
    kms.setHandler(() => ({
      status: 400,
      body: { __type: "AccessDeniedException", message: `User: arn:aws:iam::123456789012:user/ci is not authorized to perform: kms:Decrypt on resource: ${ARN}` },
    }));
    await assert.rejects(new AwsKmsProvider().decryptDataKey({ arn: ARN, enc: ENC }), (err: unknown) => {
      assert.ok(err instanceof DecryptionError);
      assert.match(err.message, new RegExp(`^AWS KMS key ${ARN}: decrypting the data key failed: AccessDeniedException: .*kms:Decrypt`));
      assert.ok(!err.message.includes(ENC));
      return true;
    });
  });

  test("malformed entries are refused before any request", async () => {
    const p = new AwsKmsProvider();
    await assert.rejects(p.decryptDataKey({ arn: "arn:aws:kms:evil.example/#:1:key/x", enc: ENC }), /is not a KMS key or alias ARN/);
    await assert.rejects(p.decryptDataKey({ arn: ARN, enc: "%%%" }), /not base64/);
    await assert.rejects(p.decryptDataKey({ enc: ENC }), /has no "arn"/);
    assert.equal(kms.requests.length, 0);
    kms.setHandler(() => ({ status: 200, body: { KeyId: ARN, Plaintext: Buffer.alloc(31).toString("base64") } }));
    await assert.rejects(p.decryptDataKey({ arn: ARN, enc: ENC }), /returned 31 bytes where a SOPS data key has 32/);
  });

  test("the encryption context as sops reads it: a map of strings, else none", () => {
    assert.deepEqual(encryptionContext({ context: { a: "1", b: "2" } }), { a: "1", b: "2" });
    assert.equal(encryptionContext({ context: { a: "1", b: 2 } }), undefined);
    assert.equal(encryptionContext({ context: {} }), undefined);
    assert.equal(encryptionContext({}), undefined);
    assert.equal(encryptionContext({ context: "a:1" }), undefined);
  });
});

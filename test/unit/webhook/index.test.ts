import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { WebhookConfig } from "../../../src/config/flags.js";
import { KubeApiError } from "../../../src/kube/errors.js";
import { Metrics } from "../../../src/server/metrics.js";
import { silentLogger } from "../../../src/util/log.js";
import { startWebhook, type WebhookClient } from "../../../src/webhook/index.js";
import { FakeClock } from "../../support/fake-clock.js";

const config: WebhookConfig = {
  enabled: true,
  certMode: "self-signed",
  certDir: "",
  port: 0,
  certValidityMs: 3 * 3_600_000,
  serviceName: "hook",
  serviceNamespace: "",
  validatingConfigName: "hooks",
};

const forbidden = async (): Promise<never> => {
  throw new KubeApiError({ status: 403, reason: "Forbidden", serverMessage: "secrets is forbidden", operation: "get secrets" });
};
const refusingClient: WebhookClient = { get: forbidden, create: forbidden, update: forbidden, patch: forbidden };

describe("startWebhook", () => {
  it("needs the webhook configuration's name in self-signed mode", async () => {
    await assert.rejects(
      startWebhook({ config: { ...config, validatingConfigName: "" }, client: refusingClient, namespace: "ctrl", log: silentLogger() }),
      /--webhook-validating-config-name/,
    );
  });

  it("counts each failed self-signed sync in stageset_webhook_cert_renewal_failures_total and is not ready without a certificate", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const clock = new FakeClock();
    const webhook = await startWebhook({ config, client: refusingClient, namespace: "ctrl", log: silentLogger(), clock, metrics, host: "127.0.0.1" });
    try {
      assert.ok(webhook.port > 0);
      await clock.whenSleeping(1);
      await clock.run(3_000, 1);
      const value = (await metrics.webhookCertRenewalFailuresTotal.get()).values[0]?.value;
      assert.equal(value, 3, "failed at 0 s, 1 s and 3 s");
      assert.equal(webhook.ready(), false);
    } finally {
      await webhook.close();
    }
    assert.equal(webhook.ready(), false);
    await webhook.whenReady();
  });
});

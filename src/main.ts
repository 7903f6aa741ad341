#!/usr/bin/env -S node --max-semi-space-size=8
import { FlagError, isHelpOrVersion, parseControllerFlags, type ControllerConfig } from "./config/flags.js";
import { startController } from "./controller/controller.js";
import { loadKubeConfig } from "./kube/kubeconfig.js";
import { createLogger } from "./util/log.js";
import { setHeapGrowth } from "./util/heap.js";

const EXIT_USAGE = 2;

function parseOrExit(): ControllerConfig {
  try {
    return parseControllerFlags(process.argv.slice(2));
  } catch (err) {
    if (isHelpOrVersion(err)) {
      process.exit(0);
    }
    if (err instanceof FlagError) {
      process.stderr.write(`stageset-controller: ${err.message}\nRun stageset-controller --help for the list of flags.\n`);
      process.exit(EXIT_USAGE);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const config = parseOrExit();
  setHeapGrowth(config.heapGrowthPercent);
  const log = createLogger({ level: config.logLevel, encoding: config.logEncoding });
  const kubeConfig = loadKubeConfig(config.kubeconfig ? { path: config.kubeconfig } : {});
  const controller = await startController({ config, kubeConfig, log });

  let signals = 0;
  const shutdown = (signal: string) => {
    signals++;
    if (signals > 1) {
      log.warn("second signal: exiting now");
      process.exit(1);
    }
    log.info({ signal }, "shutting down");
    controller
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err: String(err) }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((err: unknown) => {
  process.stderr.write(`stageset-controller: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { parseDuration } from "../api/duration.js";

/**
 * Every flag of the controller, parsed and validated. The configuration
 * reference in docs/configuration.md lists them; a flag whose feature has not
 * landed yet is still accepted (so a chart written for the full product works)
 * and its help text says so.
 */
export interface ControllerConfig {
  kubeconfig?: string;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  leaderElect: boolean;
  leaderElectionNamespace?: string;
  leaderElectionLeaseDurationMs: number;
  leaderElectionRenewDeadlineMs: number;
  leaderElectionRetryPeriodMs: number;
  /** Give the Lease up on a graceful shutdown (controller-runtime's LeaderElectionReleaseOnCancel); default false, as documented. */
  leaderElectionReleaseOnCancel: boolean;
  watchNamespaces: string[];
  concurrent: number;
  /** `--concurrent-builds`: kustomize builds at once, across all StageSets. */
  concurrentBuilds: number;
  /** `--heap-growth-percent`: V8's heap growing factor in percent (0: V8's own heuristic). */
  heapGrowthPercent: number;
  defaultIntervalMs: number;
  requeueDependencyMs: number;
  inventoryMode: InventoryMode;
  inventoryShardCap: number;
  noCrossNamespaceRefs: boolean;
  allowedActionHosts: string[];
  runbookBaseUrl: string;
  /** Flux notification-controller's event endpoint (`--events-addr`); empty: events are not forwarded. */
  eventsAddr: string;
  rollbackStore: RollbackStoreConfig;
  webhook: WebhookConfig;
  gateBindAddress: string;
  logLevel: LogLevel;
  logEncoding: LogEncoding;
}

export type InventoryMode = "entries" | "hybrid" | "applyset";
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";
export type LogEncoding = "json" | "console";

export interface RollbackStoreConfig {
  path: string;
  s3: {
    endpoint: string;
    bucket: string;
    prefix: string;
    region: string;
    useSSL: boolean;
    accessKey: string;
    secretKey: string;
    sessionToken: string;
    anonymous: boolean;
    sse: "none" | "s3" | "kms";
    sseKmsKey: string;
  };
}

export interface WebhookConfig {
  enabled: boolean;
  certMode: "cert-manager" | "self-signed";
  certDir: string;
  port: number;
  certValidityMs: number;
  serviceName: string;
  serviceNamespace: string;
  validatingConfigName: string;
  /** Extra DNS names or IP addresses in the self-signed serving certificate (a webhook registered by URL rather than through its Service). */
  extraSans?: string[];
}

/** A flag value the controller cannot run with. main() exits 2 on it. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

function durationArg(flag: string) {
  return (value: string): number => {
    try {
      return parseDuration(value);
    } catch {
      throw new InvalidArgumentError(`${flag} wants a duration such as 30s, 10m or 1h30m, got "${value}"`);
    }
  };
}

function nonNegativeIntArg(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`${flag} wants a whole number of at least 0, got "${value}"`);
    }
    return n;
  };
}

function positiveIntArg(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${flag} wants a whole number of at least 1, got "${value}"`);
    }
    return n;
  };
}

function boolArg(flag: string) {
  // Commander passes the preset (boolean true) when the flag is given bare.
  return (value: string | boolean): boolean => {
    if (value === true || value === "true" || value === "1") return true;
    if (value === "false" || value === "0") return false;
    throw new InvalidArgumentError(`${flag} wants true or false, got "${value}"`);
  };
}

function bindAddressArg(flag: string, allowDisable: boolean) {
  return (value: string): string => {
    if (allowDisable && (value === "" || value === "0")) return value;
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/.test(value) || Number(value.slice(value.lastIndexOf(":") + 1)) > 65535) {
      throw new InvalidArgumentError(`${flag} wants host:port or :port (for example :8080), got "${value}"`);
    }
    return value;
  };
}

function listArg(value: string, previous: string[] | undefined): string[] {
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return [...(previous ?? []), ...items];
}

// Commander treats a flag named --no-x as the negation of --x; the Go original
// has a plain boolean flag with this name, so it is parsed under another name.
const DENY_CROSS_NS_INTERNAL = "--deny-cross-namespace-refs";

function renameNegatedFlag(arg: string): string {
  if (arg === "--no-cross-namespace-refs" || arg.startsWith("--no-cross-namespace-refs=")) {
    return DENY_CROSS_NS_INTERNAL + arg.slice("--no-cross-namespace-refs".length);
  }
  return arg;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function buildControllerCommand(): Command {
  const cmd = new Command("stageset-controller")
    .description("Ordered, gated, multi-stage delivery for Flux: reconciles StageSets.")
    .helpOption("-h, --help", "show this help")
    .version(process.env.STAGESET_VERSION ?? "0.1.0", "--version", "print the version")
    .allowExcessArguments(false)
    .showSuggestionAfterError(true)
    .configureHelp({ optionTerm: (opt) => opt.flags.replace(DENY_CROSS_NS_INTERNAL, "--no-cross-namespace-refs") })
    .addOption(new Option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG, then in-cluster config, then ~/.kube/config)"))
    .addOption(new Option("--metrics-bind-address <addr>", 'Prometheus metrics endpoint; "0" disables').default(":8080").argParser(bindAddressArg("--metrics-bind-address", true)))
    .addOption(new Option("--health-probe-bind-address <addr>", "/healthz and /readyz endpoint").default(":8081").argParser(bindAddressArg("--health-probe-bind-address", false)))
    .addOption(new Option("--leader-elect [bool]", "only the holder of the stageset-controller.stages.metio.wtf Lease reconciles").default(false).preset(true).argParser(boolArg("--leader-elect")))
    .addOption(new Option("--leader-election-namespace <ns>", "namespace of the leader-election Lease (default: the pod's namespace, $POD_NAMESPACE, else default)"))
    .addOption(new Option("--leader-election-lease-duration <d>", "how long a lease is valid without renewal").default(15_000, "15s").argParser(durationArg("--leader-election-lease-duration")))
    .addOption(new Option("--leader-election-renew-deadline <d>", "how long the leader keeps trying to renew before it stops reconciling").default(10_000, "10s").argParser(durationArg("--leader-election-renew-deadline")))
    .addOption(new Option("--leader-election-retry-period <d>", "how often candidates try to acquire or renew").default(2_000, "2s").argParser(durationArg("--leader-election-retry-period")))
    .addOption(
      new Option("--leader-election-release-on-cancel [bool]", "release the Lease on a graceful shutdown so another replica takes over at once (default: keep it until it expires)")
        .default(false)
        .preset(true)
        .argParser(boolArg("--leader-election-release-on-cancel")),
    )
    .addOption(new Option("--watch-namespaces <list>", "comma-separated namespaces to watch; empty watches the whole cluster (falls back to $STAGESET_WATCH_NAMESPACES)").argParser(listArg))
    .addOption(new Option("--concurrent <n>", "StageSets reconciled at the same time").default(4).argParser(positiveIntArg("--concurrent")))
    .addOption(
      new Option(
        "--concurrent-builds <n>",
        "kustomize builds run at the same time across all StageSets (each a process of ~30 MiB); the others wait their turn. kustomize-controller runs one at a time",
      )
        .default(1)
        .argParser(positiveIntArg("--concurrent-builds")),
    )
    .addOption(
      new Option(
        "--heap-growth-percent <n>",
        "how far the JavaScript heap may grow past what the last full garbage collection kept before the next one, in percent (as Go's GOGC); 0 leaves it to V8, which lets it grow up to 4x",
      )
        .default(100)
        .argParser(nonNegativeIntArg("--heap-growth-percent")),
    )
    .addOption(new Option("--default-interval <d>", "reconcile cadence for StageSets without spec.interval").default(600_000, "10m").argParser(durationArg("--default-interval")))
    .addOption(new Option("--requeue-dependency <d>", "how often a StageSet held by dependsOn re-checks its dependencies").default(30_000, "30s").argParser(durationArg("--requeue-dependency")))
    .addOption(new Option("--inventory-mode <mode>", "how applied objects are tracked").choices(["entries", "hybrid", "applyset"]).default("hybrid"))
    .addOption(new Option("--inventory-shard-cap <n>", "maximum entries per StageInventory shard").default(5000).argParser(positiveIntArg("--inventory-shard-cap")))
    .addOption(new Option(`${DENY_CROSS_NS_INTERNAL} [bool]`, "refuse sourceRef and dependsOn that point into another namespace").default(false).preset(true).argParser(boolArg("--no-cross-namespace-refs")))
    .addOption(new Option("--allowed-action-hosts <glob>", "host glob http actions may reach (loopback, link-local and metadata addresses only when listed literally); repeatable").argParser(listArg))
    .addOption(new Option("--runbook-base-url <url>", "URL prefix appended to actionable Ready messages as (runbook: <url>/<reason>/); empty disables").default(""))
    .addOption(new Option("--events-addr <url>", "Flux notification-controller event endpoint that every event is also posted to, e.g. http://notification-controller.flux-system.svc.cluster.local./; empty disables").default(""))
    .addOption(new Option("--rollback-store-path <dir>", "filesystem rollback store").default(""))
    .addOption(new Option("--rollback-store-s3-endpoint <host:port>", "S3 rollback store endpoint").default(""))
    .addOption(new Option("--rollback-store-s3-bucket <name>", "S3 rollback store bucket").default(""))
    .addOption(new Option("--rollback-store-s3-prefix <prefix>", "S3 object-key prefix").default(""))
    .addOption(new Option("--rollback-store-s3-region <region>", "S3 region").default(""))
    .addOption(new Option("--rollback-store-s3-use-ssl [bool]", "use HTTPS for S3").default(true).preset(true).argParser(boolArg("--rollback-store-s3-use-ssl")))
    .addOption(new Option("--rollback-store-s3-access-key <key>", "S3 static access key").default(""))
    .addOption(new Option("--rollback-store-s3-secret-key <key>", "S3 secret key").default(""))
    .addOption(new Option("--rollback-store-s3-session-token <token>", "S3 session token").default(""))
    .addOption(new Option("--rollback-store-s3-anonymous [bool]", "skip S3 request signing").default(false).preset(true).argParser(boolArg("--rollback-store-s3-anonymous")))
    .addOption(new Option("--rollback-store-s3-sse <mode>", "S3 server-side encryption").choices(["none", "s3", "kms"]).default("s3"))
    .addOption(new Option("--rollback-store-s3-sse-kms-key <id>", "KMS key for --rollback-store-s3-sse=kms").default(""))
    .addOption(new Option("--enable-webhook [bool]", "run the validating admission webhook").default(true).preset(true).argParser(boolArg("--enable-webhook")))
    .addOption(new Option("--webhook-cert-mode <mode>", "webhook TLS provisioning").choices(["cert-manager", "self-signed"]).default("cert-manager"))
    .addOption(new Option("--webhook-cert-dir <dir>", "directory with tls.crt and tls.key").default("/tmp/k8s-webhook-server/serving-certs"))
    .addOption(new Option("--webhook-port <port>", "webhook server port").default(9443).argParser(positiveIntArg("--webhook-port")))
    .addOption(new Option("--webhook-cert-validity <d>", "self-signed cert validity, rotated at a third").default(8760 * 3_600_000, "8760h").argParser(durationArg("--webhook-cert-validity")))
    .addOption(new Option("--webhook-service-name <name>", "webhook Service, for cert SANs").default("stageset-controller-webhook"))
    .addOption(new Option("--webhook-service-namespace <ns>", "webhook Service namespace").default(""))
    .addOption(new Option("--webhook-validating-config-name <name>", "ValidatingWebhookConfiguration whose caBundle is patched").default(""))
    .addOption(
      new Option("--webhook-cert-extra-sans <names>", "comma-separated extra DNS names or IP addresses for the self-signed certificate, for a webhook the API server reaches by URL").default(""),
    )
    .addOption(new Option("--gate-bind-address <addr>", "read-only stage gate endpoint (GET /gate/{namespace}/{stageset}/{stage}); empty disables").default(":8082").argParser(bindAddressArg("--gate-bind-address", true)))
    .addOption(new Option("--log-level <level>", "log verbosity").choices(["trace", "debug", "info", "warn", "error"]).default("info"))
    .addOption(new Option("--log-encoding <encoding>", "log format").choices(["json", "console"]).default("json"))
    .addOption(new Option("--zap-log-level <level>", "alias of --log-level, for controller-runtime compatibility").hideHelp())
    .addOption(new Option("--zap-encoder <encoding>", "alias of --log-encoding, for controller-runtime compatibility").hideHelp());
  return cmd;
}

/**
 * Parses argv (without node and script) and the environment into a validated
 * config. Throws FlagError (or commander's own error) naming the flag.
 */
export function parseControllerFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  const cmd = buildControllerCommand()
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
  try {
    cmd.parse(argv.map(renameNegatedFlag), { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError && !isHelpOrVersion(err)) {
      throw new FlagError(err.message.replace(/^error: /, "").replaceAll(`'${DENY_CROSS_NS_INTERNAL} [bool]'`, "'--no-cross-namespace-refs'"));
    }
    throw err;
  }
  const o = cmd.opts();

  let watchNamespaces: string[] = o.watchNamespaces ?? [];
  if (watchNamespaces.length === 0 && env.STAGESET_WATCH_NAMESPACES) {
    watchNamespaces = listArg(env.STAGESET_WATCH_NAMESPACES, []);
  }
  for (const ns of watchNamespaces) {
    if (!DNS_LABEL.test(ns)) throw new FlagError(`--watch-namespaces: "${ns}" is not a valid namespace name`);
  }

  const logLevel = normalizeLogLevel(o.zapLogLevel ?? o.logLevel);
  const logEncoding = normalizeLogEncoding(o.zapEncoder ?? o.logEncoding);

  if (o.runbookBaseUrl !== "" && !/^https?:\/\/\S+$/.test(o.runbookBaseUrl)) {
    throw new FlagError(`--runbook-base-url wants an http(s) URL such as https://runbooks.example/stageset, got "${o.runbookBaseUrl}"`);
  }
  if (o.eventsAddr !== "" && !isHttpUrl(o.eventsAddr)) {
    throw new FlagError(`--events-addr wants an http(s) URL such as http://notification-controller.flux-system.svc.cluster.local./, got "${o.eventsAddr}"`);
  }
  if (o.rollbackStorePath !== "" && o.rollbackStoreS3Endpoint !== "") {
    throw new FlagError("--rollback-store-path and --rollback-store-s3-endpoint are mutually exclusive: choose one rollback store");
  }
  if ((o.rollbackStoreS3Endpoint === "") !== (o.rollbackStoreS3Bucket === "")) {
    throw new FlagError("--rollback-store-s3-endpoint and --rollback-store-s3-bucket must be set together");
  }
  if ((o.rollbackStoreS3AccessKey === "") !== (o.rollbackStoreS3SecretKey === "")) {
    throw new FlagError("--rollback-store-s3-access-key and --rollback-store-s3-secret-key must be set together");
  }
  if (o.rollbackStoreS3SessionToken !== "" && o.rollbackStoreS3AccessKey === "") {
    throw new FlagError("--rollback-store-s3-session-token needs --rollback-store-s3-access-key and --rollback-store-s3-secret-key");
  }
  if (o.rollbackStoreS3Anonymous && o.rollbackStoreS3AccessKey !== "") {
    throw new FlagError("--rollback-store-s3-anonymous and --rollback-store-s3-access-key are mutually exclusive");
  }
  if (o.rollbackStoreS3SseKmsKey !== "" && o.rollbackStoreS3Sse !== "kms") {
    throw new FlagError("--rollback-store-s3-sse-kms-key needs --rollback-store-s3-sse=kms");
  }
  if (o.webhookCertMode === "self-signed" && o.enableWebhook && o.webhookValidatingConfigName === "") {
    throw new FlagError("--webhook-validating-config-name is required with --webhook-cert-mode=self-signed");
  }
  if (o.webhookPort > 65535) throw new FlagError(`--webhook-port wants a port number up to 65535, got ${o.webhookPort}`);
  if (o.leaderElectionRenewDeadline >= o.leaderElectionLeaseDuration) {
    throw new FlagError("--leader-election-renew-deadline must be shorter than --leader-election-lease-duration");
  }
  if (o.leaderElectionRetryPeriod >= o.leaderElectionRenewDeadline) {
    throw new FlagError("--leader-election-retry-period must be shorter than --leader-election-renew-deadline");
  }
  for (const glob of o.allowedActionHosts ?? []) {
    if (!/^[A-Za-z0-9.*:[\]-]+$/.test(glob)) throw new FlagError(`--allowed-action-hosts: "${glob}" is not a host glob such as *.example.com`);
  }

  return {
    kubeconfig: o.kubeconfig,
    metricsBindAddress: o.metricsBindAddress,
    healthProbeBindAddress: o.healthProbeBindAddress,
    leaderElect: o.leaderElect,
    leaderElectionNamespace: o.leaderElectionNamespace,
    leaderElectionLeaseDurationMs: o.leaderElectionLeaseDuration,
    leaderElectionRenewDeadlineMs: o.leaderElectionRenewDeadline,
    leaderElectionRetryPeriodMs: o.leaderElectionRetryPeriod,
    leaderElectionReleaseOnCancel: o.leaderElectionReleaseOnCancel,
    watchNamespaces,
    concurrent: o.concurrent,
    concurrentBuilds: o.concurrentBuilds,
    heapGrowthPercent: o.heapGrowthPercent,
    defaultIntervalMs: o.defaultInterval,
    requeueDependencyMs: o.requeueDependency,
    inventoryMode: o.inventoryMode,
    inventoryShardCap: o.inventoryShardCap,
    noCrossNamespaceRefs: o.denyCrossNamespaceRefs === true,
    allowedActionHosts: o.allowedActionHosts ?? [],
    runbookBaseUrl: o.runbookBaseUrl.replace(/\/+$/, ""),
    eventsAddr: o.eventsAddr,
    rollbackStore: {
      path: o.rollbackStorePath,
      s3: {
        endpoint: o.rollbackStoreS3Endpoint,
        bucket: o.rollbackStoreS3Bucket,
        prefix: o.rollbackStoreS3Prefix,
        region: o.rollbackStoreS3Region,
        useSSL: o.rollbackStoreS3UseSsl,
        accessKey: o.rollbackStoreS3AccessKey,
        secretKey: o.rollbackStoreS3SecretKey,
        sessionToken: o.rollbackStoreS3SessionToken,
        anonymous: o.rollbackStoreS3Anonymous,
        sse: o.rollbackStoreS3Sse,
        sseKmsKey: o.rollbackStoreS3SseKmsKey,
      },
    },
    webhook: {
      enabled: o.enableWebhook,
      certMode: o.webhookCertMode,
      certDir: o.webhookCertDir,
      port: o.webhookPort,
      certValidityMs: o.webhookCertValidity,
      serviceName: o.webhookServiceName,
      serviceNamespace: o.webhookServiceNamespace,
      validatingConfigName: o.webhookValidatingConfigName,
      extraSans: String(o.webhookCertExtraSans)
        .split(",")
        .map((name) => name.trim())
        .filter(Boolean),
    },
    gateBindAddress: o.gateBindAddress,
    logLevel,
    logEncoding,
  };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
  } catch {
    return false;
  }
}

function normalizeLogLevel(value: string): LogLevel {
  const map: Record<string, LogLevel> = { trace: "trace", debug: "debug", info: "info", warn: "warn", error: "error" };
  const level = map[value];
  if (!level) throw new FlagError(`--log-level wants one of trace, debug, info, warn, error, got "${value}"`);
  return level;
}

function normalizeLogEncoding(value: string): LogEncoding {
  if (value === "json" || value === "console") return value;
  throw new FlagError(`--log-encoding wants json or console, got "${value}"`);
}

/** True when commander stopped for --help or --version (exit 0, output already printed). */
export function isHelpOrVersion(err: unknown): boolean {
  return err instanceof CommanderError && (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help");
}

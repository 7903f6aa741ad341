import { Command, CommanderError, Option } from "commander";
import type { InventoryMode } from "../config/flags.js";
import { StageSetError } from "../errors.js";
import { COLOR_MODES, parseColorMode } from "./color.js";
import { runBuild, type RenderFlags } from "./commands/build.js";
import type { CommandContext } from "./commands/context.js";
import { runDiff, type DiffFlags } from "./commands/diff.js";
import { runGet, type GetFlags } from "./commands/get.js";
import { DEFAULT_WAIT_TIMEOUT, runReconcile, type ReconcileFlags } from "./commands/reconcile.js";
import { runWindows, type WindowsFlags } from "./commands/windows.js";
import { Connection, type ConnectionFlags } from "./connection.js";
import { ExitCode, InvalidManifestFileError, UsageError } from "./errors.js";
import type { CliIo } from "./io.js";
import { versionString } from "./version.js";

/** Boolean flags that also take `--flag=true|false`, as kubectl's do. */
const BOOLEAN_FLAGS = new Set([
  "insecure-skip-tls-verify",
  "all-namespaces",
  "show-secrets",
  "as-tenant",
  "server-side",
  "show-unchanged",
  "prune",
  "exit-code",
  "with-source",
  "update-now",
  "force",
  "wait",
]);

const INVENTORY_MODES: readonly InventoryMode[] = ["entries", "hybrid", "applyset"];

/**
 * Runs one command line (without the node and script arguments) and returns
 * the exit code: 0 ok, 1 diff found changes, 2 usage error, 3 runtime error.
 * `program` is the name the user typed: `stagesetctl` or `kubectl stageset`.
 */
export async function runCli(argv: readonly string[], io: CliIo, program = "stagesetctl"): Promise<number> {
  let exitCode: number = ExitCode.ok;
  let connection: Connection | undefined;
  const root = buildProgram(program, io, (cmd) => {
    connection = new Connection(cmd.optsWithGlobals<ConnectionFlags>(), io.env);
    return { io, connection, program };
  }, (code) => (exitCode = code));
  try {
    await root.parseAsync(normalizeBooleans(argv), { from: "user" });
    return exitCode;
  } catch (err) {
    return reportError(err, io, program);
  } finally {
    connection?.close();
  }
}

function buildProgram(
  program: string,
  io: CliIo,
  contextFor: (cmd: Command) => CommandContext,
  setExitCode: (code: number) => void,
): Command {
  const root = new Command(program)
    .description("Preview, render and drive StageSets: ordered, gated, multi-stage delivery for Flux.")
    .version(versionString(io.env), "--version", "print the version and commit")
    .helpOption("-h, --help", "show help")
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  addConnectionFlags(root);
  // Defaults live here rather than on the options, so help does not list "(default: false)" for every switch.
  const action =
    <F>(defaults: F, run: (ctx: CommandContext, name: string | undefined, flags: F) => Promise<number>) =>
    async (name: string | undefined, _flags: unknown, cmd: Command) => {
      setExitCode(await run(contextFor(cmd), name, { ...defaults, ...(cmd.opts() as Partial<F>) }));
    };

  root
    .command("get")
    .summary("print a StageSet's status, or list StageSets")
    .description("With no NAME, list the StageSets of the namespace (-A: of every namespace). With a NAME, print its Ready condition and per-stage phase, revision, executed actions and message.")
    .argument("[NAME]", "the StageSet")
    .option("-A, --all-namespaces", "list StageSets across all namespaces")
    .option("-o, --output <format>", "yaml or json instead of the table")
    .action(action<GetFlags>({ allNamespaces: false, output: "" }, runGet));

  addRenderFlags(
    root
      .command("build")
      .summary("render a StageSet's manifests to stdout")
      .description("Run the controller's resolve -> fetch -> build pipeline and print the result as a YAML stream. With -f FILE and --source-dir it needs no cluster.")
      .argument("[NAME]", "the StageSet in the cluster (or use -f)"),
  ).action(action<RenderFlags>(RENDER_DEFAULTS, runBuild));

  addRenderFlags(
    root
      .command("diff")
      .summary("preview what a reconcile would change (exits 1 on changes)")
      .description("Compare what a reconcile would apply with the live cluster: a unified diff per object, objects that would be pruned, and the actions a rollout would run. Exits 1 when anything would change.")
      .argument("[NAME]", "the StageSet in the cluster (or use -f)"),
  )
    .option("--server-side", "on by default: server-side dry-run apply (needs patch RBAC); --server-side=false compares client-side against live objects")
    .addOption(new Option("--no-server-side").hideHelp())
    .option("--show-unchanged", "include objects with no change")
    .option("--prune", "on by default: show objects that would be deleted; --prune=false hides them")
    .addOption(new Option("--no-prune").hideHelp())
    .addOption(new Option("--color <when>", `colorize: ${COLOR_MODES.join(", ")}`).default("auto").argParser(parseColorMode))
    .option("--exit-code", "on by default: exit 1 when changes are found; --exit-code=false exits 0")
    .addOption(new Option("--no-exit-code").hideHelp())
    .addOption(new Option("--inventory-mode <mode>", "the controller's --inventory-mode, so labels compare equal").choices(INVENTORY_MODES).default("hybrid"))
    .action(
      action<DiffFlags>(
        { ...RENDER_DEFAULTS, serverSide: true, showUnchanged: false, prune: true, color: "auto", exitCode: true, inventoryMode: "hybrid" },
        runDiff,
      ),
    );

  root
    .command("reconcile")
    .summary("force an out-of-band reconcile")
    .description("Stamp reconcile.fluxcd.io/requestedAt on the StageSet so the controller reconciles it now; with --wait, follow the run until the controller has handled the request.")
    .argument("<NAME>", "the StageSet")
    .option("--stage <name>", "re-run this stage's actions once (stages.metio.wtf/reconcile-stage clears its action ledger)")
    .option("--with-source", "also ask each stage's source to reconcile (reconcile.fluxcd.io/requestedAt on it)")
    .option("--update-now", "push a rollout held by an update window through (stages.metio.wtf/update-now)")
    .option("--force", "run once even while suspended (stages.metio.wtf/force-reconcile)")
    .option("--wait", "wait until the controller has handled the request, showing each stage's progress")
    .option("--timeout <duration>", `how long --wait waits (default ${DEFAULT_WAIT_TIMEOUT})`)
    .action(
      action<ReconcileFlags>({ withSource: false, updateNow: false, force: false, wait: false, timeout: DEFAULT_WAIT_TIMEOUT }, (ctx, name, flags) =>
        runReconcile(ctx, name!, flags),
      ),
    );

  root
    .command("windows")
    .summary("show when a rollout may ship: update windows now and the next openings")
    .description(
      "Evaluate the StageSet's spec.updateWindows: whether a new revision may roll out now and, if not, which window holds it and until when; the held revisions of status.pendingUpdate; and the next openings, in each window's time zone and yours. With -f FILE it needs no cluster.",
    )
    .argument("[NAME]", "the StageSet in the cluster (or use -f)")
    .option("-f, --filename <file>", "a StageSet manifest instead of NAME (- reads standard input)")
    .option("--next <count>", "how many openings to list (default 5)")
    .option("--now <time>", "plan from this instant instead of the current time (RFC 3339, e.g. 2026-12-24T09:00:00+01:00)")
    .option("--time-zone <zone>", "your IANA time zone for the calendar (default: TZ, else the system's)")
    .action(action<WindowsFlags>({ next: "5" }, runWindows));
  return root;
}

function addConnectionFlags(cmd: Command): void {
  cmd
    .option("--kubeconfig <file>", "path to the kubeconfig file")
    .option("--context <name>", "the kubeconfig context to use")
    .option("--cluster <name>", "the kubeconfig cluster to use")
    .option("--user <name>", "the kubeconfig user to use")
    .option("-n, --namespace <namespace>", "the namespace (default: the context's, else default)")
    .option("--as <user>", "impersonate this user")
    .option("--as-group <group>", "impersonate this group (repeatable)", collect)
    .option("-s, --server <url>", "the API server's address")
    .option("--token <token>", "bearer token")
    .option("--username <name>", "basic auth user name")
    .option("--password <password>", "basic auth password")
    .option("--certificate-authority <file>", "CA certificate file")
    .option("--client-certificate <file>", "client certificate file")
    .option("--client-key <file>", "client key file")
    .option("--tls-server-name <name>", "server name for certificate validation")
    .option("--insecure-skip-tls-verify", "do not verify the server's certificate (insecure)")
    .option("--request-timeout <duration>", "per-request timeout: seconds, a duration (30s) or 0 for none");
}

function addRenderFlags(cmd: Command): Command {
  return cmd
    .option("-f, --filename <file>", "a StageSet manifest instead of NAME (- reads standard input)")
    .option("--stage <name>", "only this stage (repeatable)", collect)
    .option("--source-dir <[STAGE=]PATH>", "a local artifact tree for STAGE, or a bare PATH for every stage without one (repeatable); skips the cluster fetch", collect)
    .option("--substitute-from-file <file>", "ConfigMap and Secret manifests (YAML) that postBuild.substituteFrom reads instead of the cluster (repeatable)", collect)
    .option("--decryption-key-file <file>", "an age key file or armored PGP private key for SOPS files, instead of spec.decryption.secretRef (repeatable; SOPS_AGE_KEY_FILE too)", collect)
    .option("--show-secrets", "reveal Secret values instead of masking them")
    .option("--as-tenant", "act as the StageSet's spec.serviceAccountName");
}

const RENDER_DEFAULTS: RenderFlags = { stage: [], sourceDir: [], showSecrets: false, asTenant: false, substituteFromFile: [], decryptionKeyFile: [] };

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `--flag=true` → `--flag`, `--flag=false` → `--no-flag`, for the boolean flags. */
export function normalizeBooleans(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!match || !BOOLEAN_FLAGS.has(match[1]!)) {
      out.push(arg);
      continue;
    }
    const [, flag, value] = match;
    if (/^(true|1|yes)$/i.test(value!)) out.push(`--${flag}`);
    else if (/^(false|0|no)$/i.test(value!)) out.push(`--no-${flag}`);
    else throw new UsageError(`--${flag}=${value}: --${flag} takes true or false (--${flag} or --${flag}=false)`);
  }
  return out;
}

function reportError(err: unknown, io: CliIo, program: string): number {
  if (err instanceof CommanderError) {
    // Commander has already printed its message (help, version, or the error with a suggestion).
    if (err.exitCode === 0) return ExitCode.ok;
    io.err(`Run '${program} --help' (or '${program} COMMAND --help') for usage.\n`);
    return ExitCode.usage;
  }
  if (err instanceof UsageError || err instanceof InvalidManifestFileError) {
    io.err(`error: ${err.message}\n`);
    return ExitCode.usage;
  }
  const message = err instanceof StageSetError || err instanceof Error ? err.message : String(err);
  io.err(`error: ${message}\n`);
  return ExitCode.runtime;
}

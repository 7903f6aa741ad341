import { Writable } from "node:stream";
import { pino, type Logger } from "pino";

export type { Logger } from "pino";

export interface LogOptions {
  level: string;
  encoding: "json" | "console";
  destination?: NodeJS.WritableStream;
}

/**
 * Keys whose values are never logged, wherever they appear in a log record.
 * Secret material reaches the pipeline (substitution variables, decrypted
 * manifests, kubeconfigs); this is the last line of defence if one slips into
 * a log call.
 */
const REDACT_PATHS = [
  "token",
  "password",
  "secret",
  "data",
  "stringData",
  "kubeconfig",
  "authorization",
  "*.token",
  "*.password",
  "*.data",
  "*.stringData",
  "*.authorization",
  "headers.authorization",
];

export function createLogger(options: LogOptions): Logger {
  const destination = options.destination ?? process.stderr;
  const stream = options.encoding === "console" ? consoleStream(destination) : destination;
  return pino(
    {
      level: options.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: "***" },
      messageKey: "msg",
    },
    stream,
  );
}

/** Human-readable lines: `time LEVEL msg key=value ...`. */
function consoleStream(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line === "") continue;
        try {
          const { time, level, msg, ...rest } = JSON.parse(line) as Record<string, unknown>;
          const fields = Object.entries(rest)
            .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
            .join(" ");
          out.write(`${String(time)} ${String(level).toUpperCase().padEnd(5)} ${String(msg ?? "")}${fields ? " " + fields : ""}\n`);
        } catch {
          out.write(line + "\n");
        }
      }
      callback();
    },
  });
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

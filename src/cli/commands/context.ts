import type { Connection } from "../connection.js";
import type { CliIo } from "../io.js";

/** What every command gets: where to write, the cluster connection, and the name it was invoked as. */
export interface CommandContext {
  io: CliIo;
  connection: Connection;
  /** `stagesetctl`, or `kubectl stageset` when run as the kubectl plugin. */
  program: string;
}

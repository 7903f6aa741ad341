#!/usr/bin/env node
import { basename } from "node:path";
import { processIo } from "./io.js";
import { runCli } from "./program.js";

// Installed as `kubectl-stageset`, kubectl runs it for `kubectl stageset …`.
const invokedAs = basename(process.argv[1] ?? "");
const program = invokedAs.startsWith("kubectl-stageset") ? "kubectl stageset" : "stagesetctl";

process.exitCode = await runCli(process.argv.slice(2), processIo(), program);

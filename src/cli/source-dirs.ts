import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { UsageError } from "./errors.js";

/**
 * `--source-dir [STAGE=]PATH`, repeatable: a local artifact tree per stage,
 * and at most one bare PATH for every stage without its own entry.
 */
export interface SourceDirs {
  byStage: ReadonlyMap<string, string>;
  fallback?: string;
}

const STAGE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function parseSourceDirs(values: readonly string[], cwd = process.cwd()): SourceDirs {
  const byStage = new Map<string, string>();
  let fallback: string | undefined;
  for (const value of values) {
    const eq = value.indexOf("=");
    const prefix = eq > 0 ? value.slice(0, eq) : "";
    if (STAGE_NAME.test(prefix)) {
      const path = value.slice(eq + 1);
      if (!path) throw new UsageError(`--source-dir ${value}: no path after "${prefix}="; use --source-dir ${prefix}=PATH`);
      if (byStage.has(prefix)) throw new UsageError(`--source-dir names stage "${prefix}" twice; give each stage one tree`);
      byStage.set(prefix, resolve(cwd, path));
      continue;
    }
    if (!value) throw new UsageError("--source-dir needs a value: --source-dir [STAGE=]PATH");
    if (fallback !== undefined) {
      throw new UsageError(`--source-dir: only one bare PATH is allowed (got ${fallback} and ${value}); prefix the others with the stage, e.g. --source-dir app=${value}`);
    }
    fallback = resolve(cwd, value);
  }
  return fallback === undefined ? { byStage } : { byStage, fallback };
}

/** The local tree for `stage`, or undefined when it is fetched from the cluster. */
export function sourceDirFor(dirs: SourceDirs, stage: string): string | undefined {
  return dirs.byStage.get(stage) ?? dirs.fallback;
}

export function hasSourceDirs(dirs: SourceDirs): boolean {
  return dirs.byStage.size > 0 || dirs.fallback !== undefined;
}

/** Every stage prefix must name a stage of the StageSet. */
export function assertStagesKnown(dirs: SourceDirs, stageNames: readonly string[]): void {
  for (const stage of dirs.byStage.keys()) {
    if (!stageNames.includes(stage)) {
      throw new UsageError(`--source-dir ${stage}=…: the StageSet has no stage "${stage}"; use one of: ${stageNames.join(", ")}`);
    }
  }
}

/** Fails with a usage error unless `dir` is a directory. */
export async function assertDirectory(dir: string, stage: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new UsageError(`--source-dir for stage "${stage}": ${dir} is not a directory; point it at the tree the artifact would unpack to`);
  }
}

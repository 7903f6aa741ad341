import { readFile } from "node:fs/promises";
import { parseAllDocuments } from "yaml";
import { withDefaults } from "../api/defaults.js";
import { API_VERSION, STAGESET_KIND, type Stage, type StageSet } from "../api/types.js";
import { validateStageSet } from "../api/validate.js";
import type { Connection } from "./connection.js";
import { InvalidManifestFileError, UsageError } from "./errors.js";

export interface StageSetSource {
  /** NAME on the command line: read from the cluster. */
  name?: string;
  /** `-f FILE`: read from a manifest. */
  file?: string;
}

/** The StageSet named on the command line does not exist (a runtime error: exit 3). */
export class StageSetNotFoundError extends Error {
  constructor(namespace: string, name: string, command: string) {
    super(
      `StageSet ${namespace}/${name} not found; "${command} get" lists the StageSets of namespace ${namespace} (add -A for every namespace), -n picks another namespace`,
    );
    this.name = "StageSetNotFoundError";
  }
}

/**
 * The StageSet a command works on, with the schema defaults applied and its
 * namespace set: from the cluster by NAME, or from a file (`-f`), which is
 * validated like the API server would and needs no cluster.
 */
export async function loadStageSet(source: StageSetSource, connection: Connection, usage: string, program: string): Promise<StageSet> {
  if (source.name && source.file) throw new UsageError(`give either NAME or -f FILE, not both: ${usage}`);
  if (!source.name && !source.file) throw new UsageError(`which StageSet? ${usage}`);
  const stageSet = source.file ? await readStageSetFile(source.file, connection) : await readStageSet(source.name!, connection, program);
  return { ...stageSet, spec: withDefaults(stageSet.spec) };
}

async function readStageSet(name: string, connection: Connection, program: string): Promise<StageSet> {
  const namespace = connection.namespace;
  const stageSet = await connection.client().get<StageSet>({ apiVersion: API_VERSION, kind: STAGESET_KIND, namespace, name });
  if (!stageSet) throw new StageSetNotFoundError(namespace, name, program);
  return stageSet;
}

async function readStageSetFile(file: string, connection: Connection): Promise<StageSet> {
  let text: string;
  try {
    text = file === "-" ? await readStdin() : await readFile(file, "utf8");
  } catch (err) {
    throw new UsageError(`-f ${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); pass the path of a StageSet manifest`);
  }
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) throw new UsageError(`-f ${file}: the file is empty; pass a StageSet manifest`);
  const stageSets: unknown[] = [];
  for (const doc of documents) {
    if (doc.errors.length > 0) throw new UsageError(`-f ${file}: not valid YAML: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS();
    if (isRecord(value) && value.kind === STAGESET_KIND) stageSets.push(value);
  }
  if (stageSets.length !== 1) {
    throw new UsageError(
      `-f ${file}: expected exactly one ${STAGESET_KIND} (apiVersion ${API_VERSION}) in the file, found ${stageSets.length}; put one StageSet per file`,
    );
  }
  const issues = validateStageSet(stageSets[0]);
  if (issues.length > 0) throw new InvalidManifestFileError(file, issues);
  const stageSet = stageSets[0] as StageSet;
  const own = stageSet.metadata.namespace;
  if (own && connection.namespaceExplicit && own !== connection.namespace) {
    throw new UsageError(
      `-f ${file} is for namespace "${own}" but -n says "${connection.namespace}"; drop -n or change metadata.namespace in the file`,
    );
  }
  return { ...stageSet, metadata: { ...stageSet.metadata, namespace: own || connection.namespace } };
}

/** The stages `--stage` selects (all when none is given), in spec order, with their index. */
export function selectStages(stageSet: StageSet, wanted: readonly string[]): { stage: Stage; index: number }[] {
  const all = stageSet.spec.stages.map((stage, index) => ({ stage, index }));
  if (wanted.length === 0) return all;
  const names = all.map((s) => s.stage.name);
  for (const name of wanted) {
    if (!names.includes(name)) {
      throw new UsageError(`--stage ${name}: StageSet ${describeStageSet(stageSet)} has no such stage; use one of: ${names.join(", ")}`);
    }
  }
  return all.filter((s) => wanted.includes(s.stage.name));
}

export function describeStageSet(stageSet: StageSet): string {
  return `${stageSet.metadata.namespace ?? ""}/${stageSet.metadata.name ?? ""}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `-f -` reads the manifest from standard input, like kubectl. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

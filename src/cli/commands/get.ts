import { API_VERSION, STAGESET_KIND, type KubeObject, type StageSet } from "../../api/types.js";
import { UsageError } from "../errors.js";
import { StageSetNotFoundError } from "../stageset-input.js";
import { stageSetDetail, stageSetTable } from "../status-view.js";
import { toYaml } from "../yaml-output.js";
import type { CommandContext } from "./context.js";

export type OutputFormat = "" | "yaml" | "json";

export interface GetFlags {
  allNamespaces: boolean;
  output: string;
}

/** `get [NAME]`: the StageSet list (a table, or a v1 List) or one StageSet's detail. */
export async function runGet(ctx: CommandContext, name: string | undefined, flags: GetFlags): Promise<number> {
  const output = parseOutput(flags.output);
  if (name && flags.allNamespaces) {
    throw new UsageError(`-A lists StageSets across namespaces and cannot be combined with a NAME: use ${ctx.program} get -A, or ${ctx.program} get ${name} -n NAMESPACE`);
  }
  const client = ctx.connection.client();
  const namespace = ctx.connection.namespace;
  if (name) {
    const stageSet = await client.get<StageSet>({ apiVersion: API_VERSION, kind: STAGESET_KIND, namespace, name });
    if (!stageSet) throw new StageSetNotFoundError(namespace, name, ctx.program);
    ctx.io.out(output ? serialize(withoutManagedFields(stageSet), output) : stageSetDetail(stageSet));
    return 0;
  }
  const { items } = await client.listAll<StageSet>(API_VERSION, STAGESET_KIND, flags.allNamespaces ? {} : { namespace });
  if (output) {
    ctx.io.out(serialize({ apiVersion: "v1", kind: "List", metadata: {}, items: items.map(withoutManagedFields) }, output));
  } else if (items.length === 0) {
    ctx.io.err(flags.allNamespaces ? "No StageSets found.\n" : `No StageSets found in namespace ${namespace}.\n`);
  } else {
    ctx.io.out(stageSetTable(items, flags.allNamespaces));
  }
  return 0;
}

function parseOutput(value: string): OutputFormat {
  if (value === "" || value === "yaml" || value === "json") return value;
  throw new UsageError(`-o ${value}: unknown output format; use -o yaml, -o json, or no -o for the table`);
}

function serialize(value: unknown, output: "yaml" | "json"): string {
  return output === "json" ? `${JSON.stringify(value, null, 2)}\n` : toYaml(value);
}

function withoutManagedFields<T extends KubeObject>(obj: T): T {
  const { managedFields: _dropped, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

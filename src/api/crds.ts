/**
 * The CustomResourceDefinitions of StageSet and StageInventory, as objects
 * built from the schemas in schema.ts.
 */
import { GROUP, Labels, STAGEINVENTORY_KIND, STAGESET_KIND, VERSION } from "./types.js";
import { stageInventorySchema, stageSetSchema } from "./schema.js";
import type { SchemaNode } from "./schema-builders.js";

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames?: string[] };
    scope: "Namespaced";
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
      schema: { openAPIV3Schema: SchemaNode };
    }[];
  };
}

const ageColumn: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };

// The API server prints only the first match of a column's JSONPath, so a
// count of stages cannot be expressed; the first stage that is not Ready is
// what an operator looks for (empty once every stage is Ready).
const stageSetColumns: PrinterColumn[] = [
  { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: "Reason", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].reason' },
  {
    name: "Stages",
    type: "string",
    jsonPath: '.status.stages[?(@.phase!="Ready")].name',
    description: "The first stage that is not Ready; empty once every stage is Ready.",
  },
  { name: "Version", type: "string", jsonPath: ".status.version" },
  ageColumn,
  {
    name: "Message",
    type: "string",
    jsonPath: '.status.conditions[?(@.type=="Ready")].message',
    priority: 1,
  },
];

// JSONPath of a label; dots inside the key are escaped.
const label = (key: string): string => `.metadata.labels.${key.replace(/\./g, "\\.")}`;

const stageInventoryColumns: PrinterColumn[] = [
  { name: "StageSet", type: "string", jsonPath: label(Labels.inventoryStageSet) },
  { name: "Stage", type: "string", jsonPath: label(Labels.inventoryStage) },
  { name: "Shard", type: "string", jsonPath: label(Labels.inventoryShard) },
  { name: "Position", type: "integer", jsonPath: ".spec.stagePosition" },
  ageColumn,
];

function crd(options: {
  kind: string;
  plural: string;
  shortNames?: string[];
  statusSubresource: boolean;
  columns: PrinterColumn[];
  schema: SchemaNode;
  labels?: Record<string, string>;
}): CustomResourceDefinition {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${options.plural}.${GROUP}`, ...(options.labels ? { labels: options.labels } : {}) },
    spec: {
      group: GROUP,
      names: {
        kind: options.kind,
        listKind: `${options.kind}List`,
        plural: options.plural,
        singular: options.kind.toLowerCase(),
        ...(options.shortNames ? { shortNames: options.shortNames } : {}),
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          ...(options.statusSubresource ? { subresources: { status: {} } } : {}),
          additionalPrinterColumns: options.columns,
          schema: { openAPIV3Schema: options.schema },
        },
      ],
    },
  };
}

export function stageSetCrd(): CustomResourceDefinition {
  return crd({
    kind: STAGESET_KIND,
    plural: "stagesets",
    shortNames: ["ss"],
    statusSubresource: true,
    columns: stageSetColumns,
    schema: stageSetSchema,
  });
}

export function stageInventoryCrd(): CustomResourceDefinition {
  return crd({
    kind: STAGEINVENTORY_KIND,
    plural: "stageinventories",
    statusSubresource: false,
    columns: stageInventoryColumns,
    schema: stageInventorySchema,
    // In the hybrid and applyset inventory modes a stage's first shard is the
    // ApplySet parent (KEP-3659), which requires this label on its CRD.
    labels: { "applyset.kubernetes.io/is-parent-type": "true" },
  });
}

import type { KubeObject } from "../../src/api/types.js";

/**
 * A namespaced `Widget` CRD in `group` (each test uses a group of its own, so
 * tests running in parallel never share one). Without a schema, it keeps any
 * field.
 */
export function widgetCrd(group: string, options: { schema?: Record<string, unknown>; statusSubresource?: boolean } = {}): KubeObject {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `widgets.${group}` },
    spec: {
      group,
      scope: "Namespaced",
      names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          ...(options.statusSubresource ? { subresources: { status: {} } } : {}),
          schema: { openAPIV3Schema: options.schema ?? { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        },
      ],
    },
  };
}

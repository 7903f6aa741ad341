import type { StageSet } from "../../src/api/types.js";

export const DEMO_NAMESPACE = "demo";

export interface DemoArtifact {
  name: string;
  description: string;
  revision: string;
  files: Record<string, string>;
}

/** Three artifacts, one per stage: a CRD; a custom resource of it and a Namespace; a Deployment. */
export function demoArtifacts(): DemoArtifact[] {
  return [
    {
      name: "crds",
      description: "the CustomResourceDefinition of Greeting",
      revision: "crds@v1",
      files: {
        "greetings.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: greetings.demo.stageset.dev
spec:
  group: demo.stageset.dev
  names: { kind: Greeting, plural: greetings, singular: greeting, listKind: GreetingList }
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                message: { type: string }
`,
      },
    },
    {
      name: "config",
      description: "a Greeting (needs the CRD) and a Namespace",
      revision: "config@v1",
      files: {
        "kustomization.yaml": "resources:\n  - greeting.yaml\n  - namespace.yaml\n",
        "greeting.yaml": `apiVersion: demo.stageset.dev/v1
kind: Greeting
metadata:
  name: hello
spec:
  message: "hello from stage two"
`,
        "namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo-workloads\n",
      },
    },
    {
      name: "app",
      description: "a Deployment that must become Available",
      revision: "app@v1",
      files: {
        "web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: web
          image: registry.example/web:1.0.0
`,
      },
    },
  ];
}

/** The app artifact at a new revision: the image moves to 1.1.0. */
export function demoAppUpgrade(): DemoArtifact {
  const app = demoArtifacts().find((a) => a.name === "app")!;
  return { ...app, revision: "app@v2", description: "the Deployment with image web:1.1.0", files: { "web.yaml": app.files["web.yaml"]!.replace("web:1.0.0", "web:1.1.0") } };
}

/** The StageSet of the demo; `hookUrl` receives the app stage's post action (a deploy notification). */
export function demoStageSet(hookUrl: string): StageSet {
  return {
    apiVersion: "stages.metio.wtf/v1",
    kind: "StageSet",
    metadata: { name: "platform", namespace: DEMO_NAMESPACE },
    spec: {
      interval: "1m",
      stages: [
        { name: "crds", sourceRef: { name: "crds" } },
        { name: "config", sourceRef: { name: "config" } },
        {
          name: "app",
          sourceRef: { name: "app" },
          actions: {
            pre: [{ name: "settle", wait: { duration: "1s" } }],
            post: [{ name: "notify", http: { url: hookUrl, headers: { "X-StageSet": "platform" } } }],
          },
        },
      ],
    },
  };
}

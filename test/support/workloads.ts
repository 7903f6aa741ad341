/**
 * A Deployment file for an artifact (`<name>.yaml`). With `schedulable:
 * false` its nodeSelector matches no kwok node, so it never becomes
 * Available: a stage's verify waits on it until the timeout.
 */
export function deploymentFile(name: string, options: { image?: string; schedulable?: boolean } = {}): Record<string, string> {
  const image = options.image ?? `registry.invalid/${name}:1`;
  const selector = options.schedulable === false ? '      nodeSelector: {example.test/no-such-node: "true"}\n' : "";
  return {
    [`${name}.yaml`]: `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}}
spec:
  replicas: 1
  progressDeadlineSeconds: 3600
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
${selector}      containers: [{name: main, image: ${image}}]
`,
  };
}

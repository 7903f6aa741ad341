import { Annotations, type PostBuild, type KubeObject } from "../api/types.js";
import { BuildError, StageSetError, errorMessage } from "../errors.js";
import {
  EnvsubstSyntaxError,
  ExpansionLimitError,
  UndefinedVariableError,
  VARIABLE_NAME_FORM,
  expand,
  isValidVariableName,
  newExpansionBudget,
  type ExpansionBudget,
  suggestVariableName,
} from "./envsubst.js";
import { ManifestParseError, assertIdentityFields, lineOf, parseManifest, parseRendered } from "./manifests.js";

/** The ConfigMaps and Secrets `substituteFrom` reads. `undefined` means not found. */
export interface VarSource {
  getConfigMap(namespace: string, name: string): Promise<{ data?: Record<string, string> } | undefined>;
  /** Secret `data` values are base64-encoded, as the API returns them. */
  getSecret(namespace: string, name: string): Promise<{ data?: Record<string, string> } | undefined>;
}

/**
 * Thrown by a VarSource that cannot read ConfigMaps and Secrets at all (an
 * offline CLI build without a cluster). `message` completes "<Kind ns/name> …"
 * and says how to give the values instead.
 */
export class VarSourceUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "VarSourceUnavailableError";
  }
}

/** A resolved variable and where it came from (for messages; never its value). */
export interface Variable {
  value: string;
  origin: string;
}

export type Variables = ReadonlyMap<string, Variable>;

const DISABLED = "disabled";

/** Flux drops newlines from every value, so a value never breaks the YAML structure across lines. */
function singleLine(value: string): string {
  return value.replaceAll("\n", "");
}

/**
 * Collects the variables of a stage the way Flux does: `substituteFrom`
 * entries in order (a later one overrides an earlier one), then the inline
 * `substitute` map over all of them. A missing ConfigMap/Secret is skipped when
 * `optional`, otherwise a BuildError.
 */
export async function resolveVariables(params: {
  postBuild: PostBuild;
  namespace: string;
  stageIndex: number;
  varSource: VarSource;
}): Promise<Map<string, Variable>> {
  const { postBuild, namespace, stageIndex, varSource } = params;
  const vars = new Map<string, Variable>();
  const field = `spec.stages[${stageIndex}].postBuild`;

  for (const [k, ref] of (postBuild.substituteFrom ?? []).entries()) {
    const refField = `${field}.substituteFrom[${k}]`;
    const subject = `${ref.kind} ${namespace}/${ref.name}`;
    let found: { data?: Record<string, string> } | undefined;
    try {
      if (ref.kind === "ConfigMap") found = await varSource.getConfigMap(namespace, ref.name);
      else if (ref.kind === "Secret") found = await varSource.getSecret(namespace, ref.name);
      else throw new BuildError(`${refField}: kind "${String(ref.kind)}" is not supported; use ConfigMap or Secret`, { terminal: true });
    } catch (err) {
      if (err instanceof VarSourceUnavailableError) throw new BuildError(`${refField}: ${subject} ${err.message}`, { terminal: true });
      if (err instanceof StageSetError) throw err;
      throw new BuildError(`${refField}: reading ${subject} failed: ${errorMessage(err)}`, { cause: err });
    }
    if (!found) {
      if (ref.optional) continue;
      throw new BuildError(
        `${refField}: ${subject} not found; create it or mark the reference optional: true`,
      );
    }
    for (const [key, raw] of Object.entries(found.data ?? {})) {
      const value = ref.kind === "Secret" ? Buffer.from(raw, "base64").toString("utf8") : raw;
      vars.set(key, { value: singleLine(value), origin: `${refField} (${ref.kind} ${ref.name})` });
    }
  }
  for (const [key, value] of Object.entries(postBuild.substitute ?? {})) {
    vars.set(key, { value: singleLine(value), origin: `${field}.substitute` });
  }
  return vars;
}

function assertValidNames(vars: Variables): void {
  for (const [name, { origin }] of vars) {
    // Flux's rule, ^[_[:alpha:]][_[:alpha:][:digit:]]*$ ([:alpha:] is ASCII in Go's RE2).
    if (!isValidVariableName(name)) {
      // Only an inline name is fixed by editing the StageSet; a ConfigMap/Secret key can change under us.
      throw new BuildError(`${origin}: variable name "${name}" is invalid: it must match ${VARIABLE_NAME_FORM}; rename it (e.g. ${suggestVariableName(name)})`, {
        terminal: origin.endsWith(".substitute"),
      });
    }
  }
}

export function isSubstitutionDisabled(object: KubeObject): boolean {
  const { labels, annotations } = object.metadata ?? {};
  return labels?.[Annotations.substitute] === DISABLED || annotations?.[Annotations.substitute] === DISABLED;
}

function describe(value: unknown): string {
  if (!isObjectValue(value)) return "a document";
  const object = value;
  const metadata: Record<string, unknown> = isObjectValue(object.metadata) ? (object.metadata as Record<string, unknown>) : {};
  const text = (field: unknown) => (typeof field === "string" ? field : "");
  const namespace = text(metadata["namespace"]);
  return `${text(object.kind) || "<no kind>"} ${namespace ? `${namespace}/` : ""}${text(metadata["name"]) || "<unnamed>"}`;
}

/**
 * Renders kustomize's output documents into values, applying postBuild
 * substitution as Flux does: on the YAML text of each object, which is then
 * parsed (so `replicas: ${n}` becomes a number). Objects labelled or annotated
 * `kustomize.toolkit.fluxcd.io/substitute: disabled` are left alone, and with
 * no variables at all nothing is substituted (not even `$$` escapes or
 * defaults), exactly like kustomize-controller. In `strict` mode a variable
 * without a value or default is an error; Flux's default is non-strict, where
 * it becomes the empty string. Each document is parsed once (twice only when
 * it might carry the opt-out and is substituted after all).
 */
export function substituteDocuments(
  sources: readonly string[],
  vars: Variables,
  options: { stageIndex: number; strict?: boolean; budget?: ExpansionBudget },
): unknown[] {
  if (vars.size === 0) return sources.map((source) => parseRendered(source, options.stageIndex));
  let namesChecked = false;
  // One budget for every document of the stage (a caller substituting document by document passes it along).
  const budget = options.budget ?? newExpansionBudget();
  const lookup = (name: string) => {
    const found = vars.get(name);
    return { value: found?.value ?? "", defined: found !== undefined || !options.strict };
  };

  return sources.map((source) => {
    let value: unknown;
    if (source.includes(Annotations.substitute)) {
      value = parseRendered(source, options.stageIndex);
      if (!isObjectValue(value) || isSubstitutionDisabled(value)) return value;
    }
    if (!namesChecked) {
      assertValidNames(vars);
      namesChecked = true;
    }
    // Text without `$` expands to itself (and kustomize's output reads the same in both YAML dialects).
    if (!source.includes("$")) return value ?? parseRendered(source, options.stageIndex);

    const where = () => `spec.stages[${options.stageIndex}].postBuild: ${describe(value ?? parseRendered(source, options.stageIndex))}`;
    let substituted: string;
    try {
      substituted = expand(source, lookup, budget);
    } catch (err) {
      if (err instanceof UndefinedVariableError) throw new BuildError(`${where()}: ${undefinedMessage(err.variable)}`);
      if (err instanceof EnvsubstSyntaxError) {
        const object = value ?? parseRendered(source, options.stageIndex);
        throw new BuildError(`${where()}: ${syntaxMessage(err, source, isObjectValue(object) && object.kind === "Secret")}`);
      }
      if (err instanceof ExpansionLimitError) throw new BuildError(`${where()}: ${err.message}`, { terminal: true });
      // Anything else (a RangeError for a string too long, a bug) is still
      // this object's substitution failing; its message may quote a value.
      throw new BuildError(`${where()}: postBuild substitution failed (${err instanceof Error ? err.name : typeof err})`);
    }
    let rendered: unknown;
    try {
      rendered = parseManifest(substituted, "go-yaml-v2");
    } catch (err) {
      // ManifestParseError never quotes the text, which now holds the values.
      const problem = err instanceof ManifestParseError ? `${lineOf(err)}${err.message}` : "the YAML parser failed";
      throw new BuildError(
        `${where()}: the object is not valid YAML after substitution (${problem}); quote the field or the variable's value` +
          `${usedVariables(source, vars)}`,
      );
    }
    assertIdentityFields(rendered, options.stageIndex);
    return rendered;
  });
}

/** ", which uses the variables a, b" for the variables the text refers to (their names, never their values). */
function usedVariables(source: string, vars: Variables): string {
  const names = [...vars.keys()].filter((name) => source.includes(`\${${name}`)).slice(0, 5);
  return names.length === 0 ? "" : ` (the object uses ${names.map((n) => `\${${n}}`).join(", ")})`;
}

/** Strict mode: an unset variable, or a name that can never be set. */
function undefinedMessage(variable: string): string {
  if (!isValidVariableName(variable)) {
    return (
      `"\${${variable}}" uses "${variable}", which is not a valid variable name (a name must match ${VARIABLE_NAME_FORM}), ` +
      `so it can never be set (strict substitution); rename it (e.g. ${suggestVariableName(variable)}), ` +
      `or write $\${${variable}} if a literal "\${${variable}}" was meant`
    );
  }
  return `variable "${variable}" is not set and has no default (strict substitution); set it or write \${${variable}:=default}`;
}

/**
 * What is wrong with a malformed expression and how to fix it. In a Secret
 * the expression is not quoted (it may be part of a value): only its line in
 * the rendered object is named.
 */
function syntaxMessage(err: EnvsubstSyntaxError, source: string, redact: boolean): string {
  const optOut = `label or annotate the object ${Annotations.substitute}: ${DISABLED} to leave it unsubstituted`;
  if (redact) {
    const line = source.slice(0, err.offset).split("\n").length;
    const problem = {
      "empty-name": "has no variable name",
      "invalid-name": `uses a variable name that does not match ${VARIABLE_NAME_FORM}`,
      unterminated: 'has no closing brace "}" on its line',
      malformed: "is not a valid substitution",
    }[err.problem];
    return (
      `the \${...} expression on line ${line} of the rendered object ${problem} (not quoted: it may be part of a secret value); ` +
      `fix it, write $\${...} for a literal \${...}, or ${optOut}`
    );
  }
  switch (err.problem) {
    case "invalid-name": {
      const name = err.variable ?? "";
      return (
        `${err.message}; rename the variable (e.g. ${suggestVariableName(name)}) here and where it is set ` +
        `(postBuild.substitute or substituteFrom), or write $${err.expression} if a literal "${err.expression}" was meant`
      );
    }
    case "empty-name":
      return `${err.message}; write a variable name (${VARIABLE_NAME_FORM}) between the braces, or $${err.expression} for a literal "${err.expression}"`;
    case "unterminated":
      return `${err.message}; close it with "}", or write $\${ for a literal "\${"`;
    case "malformed":
      return `${err.message}; write $\${...} for a literal \${...}, or ${optOut}`;
  }
}

function isObjectValue(value: unknown): value is KubeObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

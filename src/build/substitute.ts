import { Annotations, type PostBuild, type KubeObject } from "../api/types.js";
import { BuildError, StageSetError, errorMessage } from "../errors.js";
import { EnvsubstSyntaxError, UndefinedVariableError, expand } from "./envsubst.js";
import { ManifestParseError, parseManifest, parseRendered } from "./manifests.js";

/** The ConfigMaps and Secrets `substituteFrom` reads. `undefined` means not found. */
export interface VarSource {
  getConfigMap(namespace: string, name: string): Promise<{ data?: Record<string, string> } | undefined>;
  /** Secret `data` values are base64-encoded, as the API returns them. */
  getSecret(namespace: string, name: string): Promise<{ data?: Record<string, string> } | undefined>;
}

/** A resolved variable and where it came from (for messages; never its value). */
export interface Variable {
  value: string;
  origin: string;
}

export type Variables = ReadonlyMap<string, Variable>;

/** Flux's rule for variable names (`[:alpha:]` is ASCII in Go's RE2). */
const VARIABLE_NAME = /^[_A-Za-z][_A-Za-z0-9]*$/;
const VARIABLE_NAME_RULE = "^[_[:alpha:]][_[:alpha:][:digit:]]*$";
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
    if (!VARIABLE_NAME.test(name)) {
      // Only an inline name is fixed by editing the StageSet; a ConfigMap/Secret key can change under us.
      throw new BuildError(`${origin}: variable name "${name}" is invalid: it must match ${VARIABLE_NAME_RULE}`, {
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
  const { namespace, name } = object.metadata ?? {};
  return `${object.kind} ${namespace ? `${namespace}/` : ""}${name ?? "<unnamed>"}`;
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
export function substituteDocuments(sources: readonly string[], vars: Variables, options: { stageIndex: number; strict?: boolean }): unknown[] {
  if (vars.size === 0) return sources.map((source) => parseRendered(source, options.stageIndex));
  let namesChecked = false;
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
      substituted = expand(source, lookup);
    } catch (err) {
      if (err instanceof UndefinedVariableError) {
        throw new BuildError(`${where()}: variable "${err.variable}" is not set and has no default (strict substitution); set it or write \${${err.variable}:=default}`);
      }
      if (err instanceof EnvsubstSyntaxError) {
        throw new BuildError(
          `${where()}: variable substitution failed: ${err.message}; write $\${...} for a literal \${...}, or label the object ${Annotations.substitute}: ${DISABLED}`,
        );
      }
      throw err;
    }
    try {
      return parseManifest(substituted, "go-yaml-v2");
    } catch (err) {
      if (err instanceof ManifestParseError) {
        throw new BuildError(`${where()}: the object is not valid YAML after substitution (line ${err.line}: ${err.message}); quote the field or the variable's value`);
      }
      throw err;
    }
  });
}

function isObjectValue(value: unknown): value is KubeObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

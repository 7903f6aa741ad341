/**
 * The `${var}` expansion dialect of Flux's postBuild substitution (the
 * `fluxcd/pkg/envsubst` fork of drone/envsubst), reimplemented so a manifest
 * renders byte-for-byte as it would under kustomize-controller.
 *
 * Supported, as in Flux:
 *   ${var}                       the value ("" when unset, unless strict)
 *   ${var:=d} ${var=d} ${var:-d} the value, or `d` when the value is empty
 *   ${var:+d} ${var:?d}          (Flux treats these exactly like `:-`)
 *   ${#var}                      length in bytes
 *   ${var^} ${var^^} ${var,} ${var,,}   upper/lower-case first/all
 *   ${var:pos} ${var:pos:len}    substring (bytes)
 *   ${var#glob} ${var##glob} ${var%glob} ${var%%glob}   trim prefix/suffix
 *   ${var/old/new} ${var//old/new} ${var/#old/new} ${var/%old/new}
 *   $$                           a literal `$` (so `$${var}` yields `${var}`)
 * `$var` without braces is left alone. Defaults and patterns may nest `${...}`.
 *
 * Exactly the inputs Flux's parser refuses are refused here, but the error
 * says what is wrong instead of Flux's generic word (`${node-id}` is "missing
 * closing brace" to Flux, an invalid variable name here). Names Flux's scanner
 * accepts (Unicode letters and digits, a leading digit: `${1abc}`) still parse
 * as Flux parses them; they can never be set, since postBuild names must match
 * `[_a-zA-Z][_a-zA-Z0-9]*`, so they expand to "" (non-strict) or fail as unset.
 */

/** What is wrong with a malformed `${...}` expression. */
export type SyntaxProblem =
  /** `${}`, `${#}`, `${:=x}`: no name at all. */
  | "empty-name"
  /** `${node-identity}`, `${a.b}`: a name with characters a variable name cannot have. */
  | "invalid-name"
  /** `${a`, `${a:=x`: no closing brace before the end of the line. */
  | "unterminated"
  /** Anything else Flux refuses, e.g. `${a b}`, `${a:}`, `${a/b}`. */
  | "malformed";

/** The form of a variable name, as postBuild validates it (Flux's `^[_[:alpha:]][_[:alpha:][:digit:]]*$`, ASCII). */
export const VARIABLE_NAME_FORM = "[_a-zA-Z][_a-zA-Z0-9]*";
const VALID_NAME = /^[_a-zA-Z][_a-zA-Z0-9]*$/;

/** True when `name` is a variable name postBuild can set. */
export function isValidVariableName(name: string): boolean {
  return VALID_NAME.test(name);
}

/**
 * A valid name close to `name`: each character a name cannot have becomes
 * `_`, and a leading digit gets a `_` before it (`node-id` -> `node_id`).
 */
export function suggestVariableName(name: string): string {
  const replaced = Array.from(name, (ch) => (/^[_a-zA-Z0-9]$/.test(ch) ? ch : "_")).join("");
  return /^[0-9]/.test(replaced) || replaced === "" ? `_${replaced}` : replaced;
}

/**
 * A `${...}` expression Flux's envsubst refuses. `message` names the
 * expression (and the variable, when there is one) but not the object: the
 * caller knows which object the text came from.
 */
export class EnvsubstSyntaxError extends Error {
  constructor(
    readonly problem: SyntaxProblem,
    /** The expression as written, e.g. `${node-identity}` (cut at the end of its line). */
    readonly expression: string,
    /** Where the expression starts in the expanded text (UTF-16 offset). */
    readonly offset: number,
    message: string,
    /** The name as written, for `invalid-name`. */
    readonly variable?: string,
  ) {
    super(message);
    this.name = "EnvsubstSyntaxError";
  }
}

/** Returns the value of a variable and whether it is defined. */
export type VariableLookup = (name: string) => { value: string; defined: boolean };

type Node = TextNode | FuncNode;
interface TextNode {
  kind: "text";
  value: string;
}
interface FuncNode {
  kind: "func";
  param: string;
  /** The operator as written: "", ":=", "=", "#", "//", "^^", ":" … */
  op: string;
  args: Node[];
}

const ERR_BAD_SUBSTITUTION = "bad substitution";
const ERR_MISSING_CLOSING_BRACE = "missing closing brace";
const ERR_VARIABLE_NAME = "unable to parse variable name";
const ERR_FUNC_PARAM = "unable to parse substitution within function";

type Accept = (ch: string) => boolean;
const notClosing: Accept = (ch) => ch !== "}";
const notSlash: Accept = (ch) => ch !== "/";
const notColonOrClosing: Accept = (ch) => ch !== ":" && ch !== "}";

function isIdentChar(ch: string): boolean {
  return /^[\p{L}\p{Nd}_]$/u.test(ch);
}

/** Characters that end what a user meant as a name: braces, `$`, blanks, quotes and the operators. */
const NAME_TERMINATORS = new Set(["}", "{", "$", " ", "\t", "\n", "\r", '"', "'", ":", "=", "/", "#", "%", ",", "^"]);
/** Characters that may follow a name inside `${...}`. */
const OPERATOR_STARTS = new Set([":", "=", "/", "#", "%", ",", "^"]);
/** The forms an operator starts, for messages. */
const FORMS_BY_OPERATOR: ReadonlyMap<string, string> = new Map([
  [":", "${name:=default}, ${name:-default}, ${name:offset} or ${name:offset:length}"],
  ["=", "${name=default}"],
  ["/", "${name/pattern/string}, ${name//pattern/string}, ${name/#pattern/string} or ${name/%pattern/string}"],
  ["#", "${name#pattern} or ${name##pattern}"],
  ["%", "${name%pattern} or ${name%%pattern}"],
  [",", "${name,} or ${name,,}"],
  ["^", "${name^} or ${name^^}"],
]);
/** How much of an expression an error message quotes. */
const MAX_EXPRESSION_LENGTH = 80;

/** The expression starting at `start` (`${`), up to its matching `}` or the end of its line. */
function expressionText(src: string, start: number): string {
  let depth = 0;
  let end = start;
  while (end < src.length && src[end] !== "\n" && src[end] !== "\r") {
    if (src[end] === "$" && src[end + 1] === "{") {
      depth += 1;
      end += 2;
      continue;
    }
    if (src[end] === "}" && --depth === 0) {
      end += 1;
      break;
    }
    end += 1;
  }
  const text = src.slice(start, end);
  return text.length > MAX_EXPRESSION_LENGTH ? `${text.slice(0, MAX_EXPRESSION_LENGTH)}…` : text;
}

/** Whether the `${` at `start` has its matching `}` before the end of its line. */
function closesOnItsLine(src: string, start: number): boolean {
  let depth = 0;
  for (let i = start; i < src.length && src[i] !== "\n" && src[i] !== "\r"; i++) {
    if (src[i] === "$" && src[i + 1] === "{") {
      depth += 1;
      i += 1;
    } else if (src[i] === "}" && --depth === 0) {
      return true;
    }
  }
  return false;
}

/** How deeply `${...}` may nest (in defaults and patterns): far past any real use, well within the stack. */
const MAX_NESTING = 64;

class Parser {
  private pos = 0;
  private depth = 0;
  /** Where the innermost `${` being parsed starts. */
  private exprStart = 0;

  constructor(private readonly src: string) {}

  parseTemplate(): Node[] {
    const nodes: Node[] = [];
    let text = "";
    while (this.pos < this.src.length) {
      if (this.atOpenBrace()) {
        if (text) nodes.push({ kind: "text", value: text });
        text = "";
        nodes.push(this.openFunc());
      } else if (this.atEscapedDollar()) {
        text += "$";
        this.pos += 2;
      } else {
        text += this.next();
      }
    }
    if (text) nodes.push({ kind: "text", value: text });
    return nodes;
  }

  /** Parses the `${...}` at the current position, remembering where it starts for error messages. */
  private openFunc(): Node {
    const outer = this.exprStart;
    this.exprStart = this.pos;
    if (++this.depth > MAX_NESTING) {
      const expression = expressionText(this.src, this.exprStart);
      throw new EnvsubstSyntaxError("malformed", expression, this.exprStart, `"${expression}" nests more than ${MAX_NESTING} \${...} expressions`);
    }
    this.pos += 2;
    const node = this.parseFunc();
    this.depth--;
    this.exprStart = outer;
    return node;
  }

  private parseFunc(): Node {
    if (this.peek() === "#") return this.parseLength();

    const param = this.takeWhile(isIdentChar);
    if (!param) throw this.fail(ERR_VARIABLE_NAME);

    switch (this.peek()) {
      case ":": {
        const afterColon = this.src[this.pos + 1];
        if (afterColon !== undefined && "=-?+".includes(afterColon)) {
          this.pos += 2;
          return this.parseDefault(param, `:${afterColon}`);
        }
        return this.parseSubstring(param);
      }
      case "=":
        this.pos += 1;
        return this.parseDefault(param, "=");
      case ",":
      case "^":
        return this.finish({ kind: "func", param, op: this.takeOperator(",^"), args: [] });
      case "/":
        return this.parseReplace(param);
      case "#":
        return this.parseTrim(param, "#");
      case "%":
        return this.parseTrim(param, "%");
    }
    if (this.peek() !== "}") throw this.fail(ERR_MISSING_CLOSING_BRACE);
    this.pos += 1;
    return { kind: "func", param, op: "", args: [] };
  }

  private parseLength(): Node {
    this.pos += 1;
    const param = this.takeWhile(isIdentChar);
    if (!param) throw this.fail(ERR_BAD_SUBSTITUTION);
    return this.finish({ kind: "func", param, op: "#", args: [] });
  }

  private parseDefault(param: string, op: string): Node {
    const node: FuncNode = { kind: "func", param, op, args: [] };
    while (this.peek() !== "}") node.args.push(this.parseParam(notClosing, false));
    this.pos += 1;
    return node;
  }

  private parseSubstring(param: string): Node {
    this.pos += 1; // the ':'
    const node: FuncNode = { kind: "func", param, op: ":", args: [this.parseParam(notColonOrClosing, false)] };
    const ch = this.peek();
    if (ch === "}") {
      this.pos += 1;
      return node;
    }
    if (ch !== ":") throw this.fail(ERR_BAD_SUBSTITUTION);
    this.takeWhile((c) => c === ":");
    node.args.push(this.parseParam(notClosing, false));
    return this.finish(node);
  }

  private parseTrim(param: string, symbol: "#" | "%"): Node {
    const op = this.takeOperator(symbol);
    return this.finish({ kind: "func", param, op, args: [this.parseParam(notClosing, false)] });
  }

  private parseReplace(param: string): Node {
    this.pos += 1; // the first '/'
    let op = "/";
    const second = this.peek();
    if (second !== undefined && "/#%".includes(second)) {
      op += second;
      this.pos += 1;
    }
    const node: FuncNode = { kind: "func", param, op, args: [] };
    node.args.push(this.peek() === "/" ? { kind: "text", value: "" } : this.parseParam(notSlash, true));
    if (this.peek() !== "/") throw this.fail(ERR_BAD_SUBSTITUTION);
    this.takeWhile((c) => c === "/");
    if (this.peek() === "}") {
      this.pos += 1;
      return node;
    }
    node.args.push(this.parseParam(notClosing, true));
    return this.finish(node);
  }

  /** One argument of a function: a nested `${...}` or a run of accepted text. */
  private parseParam(accept: Accept, escapes: boolean): Node {
    if (this.atOpenBrace()) return this.openFunc();
    let text = "";
    while (this.pos < this.src.length && !this.atOpenBrace()) {
      const escaped = escapes ? this.escapedChar() : undefined;
      if (escaped !== undefined) {
        text += escaped;
        this.pos += 2;
        continue;
      }
      const ch = this.src[this.pos]!;
      if (!accept(ch)) break;
      text += ch;
      this.pos += 1;
    }
    if (!text) throw this.fail(ERR_FUNC_PARAM);
    return { kind: "text", value: text };
  }

  /** Within replace patterns `$$`, `\/` and `\\` stand for the second character. */
  private escapedChar(): string | undefined {
    const ch = this.src[this.pos];
    const following = this.src[this.pos + 1];
    if (ch === "$" && following === "$") return "$";
    if (ch === "\\" && (following === "/" || following === "\\")) return following;
    return undefined;
  }

  /**
   * The error for the expression being parsed. Flux reports one of a few
   * generic words (`fluxError`); the kind of mistake is read from the text.
   */
  private fail(fluxError: string): EnvsubstSyntaxError {
    const start = this.exprStart;
    const expression = expressionText(this.src, start);
    let nameStart = start + 2;
    if (this.src[nameStart] === "#") nameStart += 1;
    let nameEnd = nameStart;
    while (nameEnd < this.src.length && !NAME_TERMINATORS.has(this.src[nameEnd]!)) nameEnd += 1;
    const name = this.src.slice(nameStart, nameEnd);
    const after = this.src[nameEnd];
    const closedOrOperator = after !== undefined && (after === "}" || OPERATOR_STARTS.has(after));

    if (name === "" && closedOrOperator) {
      return new EnvsubstSyntaxError("empty-name", expression, start, `"${expression}" has no variable name`);
    }
    if (name !== "" && closedOrOperator && !Array.from(name).every(isIdentChar)) {
      return new EnvsubstSyntaxError(
        "invalid-name",
        expression,
        start,
        `"${name}" in "${expression}" is not a valid variable name: a name must match ${VARIABLE_NAME_FORM}`,
        name,
      );
    }
    if (!closesOnItsLine(this.src, start)) {
      return new EnvsubstSyntaxError("unterminated", expression, start, `"${expression}" has no closing brace "}" on its line`);
    }
    const found = this.src[this.pos];
    const unexpected = found === undefined ? "" : `: unexpected "${found}" after "${this.src.slice(start, this.pos)}"`;
    const forms = FORMS_BY_OPERATOR.get(after ?? "") ?? "${name} or ${name<operator>…}";
    return new EnvsubstSyntaxError(
      "malformed",
      expression,
      start,
      `"${expression}" is not a valid substitution (${fluxError}${unexpected}); expected ${forms}`,
    );
  }

  /** An operator of one or two copies of the given symbols, e.g. `##`, `^^`, `,^`. */
  private takeOperator(symbols: string): string {
    let op = "";
    while (op.length < 2 && this.peek() !== undefined && symbols.includes(this.peek()!)) op += this.next();
    return op;
  }

  private finish(node: FuncNode): FuncNode {
    if (this.peek() !== "}") throw this.fail(ERR_BAD_SUBSTITUTION);
    this.pos += 1;
    return node;
  }

  private takeWhile(accept: Accept): string {
    const start = this.pos;
    while (this.pos < this.src.length && accept(this.src[this.pos]!)) this.pos += 1;
    return this.src.slice(start, this.pos);
  }

  private atOpenBrace(): boolean {
    return this.src[this.pos] === "$" && this.src[this.pos + 1] === "{";
  }

  private atEscapedDollar(): boolean {
    return this.src[this.pos] === "$" && this.src[this.pos + 1] === "$";
  }

  private peek(): string | undefined {
    return this.src[this.pos];
  }

  private next(): string {
    return this.src[this.pos++]!;
  }
}

const DEFAULT_OPERATORS = new Set(["-", "+", "=", "?", ":-", ":+", ":=", ":?"]);

export class UndefinedVariableError extends Error {
  constructor(readonly variable: string) {
    super(`variable not set (strict mode): "${variable}"`);
  }
}

/**
 * What one render may spend on substitution, shared by every document of a
 * stage (see {@link newExpansionBudget}); expand() draws it down and throws
 * ExpansionLimitError when it runs out.
 */
export interface ExpansionBudget {
  /** Characters the expressions may still produce (values, defaults, replacements, nested results). */
  outputChars: number;
  /** Steps the pattern matcher of `#`/`##`/`%`/`%%` may still take (value length × pattern length, summed). */
  trimSteps: number;
}

/**
 * The limits per stage render. Substitution runs on the controller's only
 * event loop, so each is sized to stay well under a fraction of a second in
 * the worst case (see docs in the test measuring it):
 * - 4 Mi characters of expression results over all objects of a stage:
 *   more than twice the largest object the API server stores (1.5 MiB in
 *   etcd); parsing that much substituted YAML takes well under a second;
 * - 2^24 (16.8 M) matcher steps for pattern trims (about 0.2 s), where
 *   Flux's own matcher (path.Match per prefix) takes quadratic time and a
 *   backtracking one exponential time.
 */
export const MAX_EXPANSION_CHARS = 4 * 1024 * 1024;
export const MAX_TRIM_STEPS = 1 << 24;

export function newExpansionBudget(): ExpansionBudget {
  return { outputChars: MAX_EXPANSION_CHARS, trimSteps: MAX_TRIM_STEPS };
}

/** The budget ran out. Names the variable and the sizes, never a value. */
export class ExpansionLimitError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = "ExpansionLimitError";
  }
}

class Evaluator {
  constructor(
    private readonly lookup: VariableLookup,
    private readonly budget: ExpansionBudget,
  ) {}

  evaluate(nodes: Node[]): string {
    let out = "";
    for (const node of nodes) out += node.kind === "text" ? node.value : this.evaluateFunc(node);
    return out;
  }

  private evaluateFunc(node: FuncNode): string {
    const args = node.args.map((arg) => this.evaluate([arg]));
    const { value, defined } = this.lookup(node.param);
    if (!defined && !DEFAULT_OPERATORS.has(node.op)) throw new UndefinedVariableError(node.param);
    if (node.op === "/" || node.op === "//") this.spend(node.param, replacedLength(node.op, value, args));
    const result = this.applyOperator(node, value, args);
    this.spend(node.param, result.length);
    return result;
  }

  private spend(variable: string, chars: number): void {
    this.budget.outputChars -= chars;
    if (this.budget.outputChars < 0) {
      throw new ExpansionLimitError(
        variable,
        `substituting "\${${variable}…}" exceeds the limit of ${MAX_EXPANSION_CHARS} characters that the substitutions of one stage may produce`,
      );
    }
  }

  private applyOperator(node: FuncNode, value: string, args: string[]): string {
    const op = node.op;
    switch (op) {
      case "#":
        return args.length === 0 ? String(Buffer.byteLength(value)) : this.trim(node, value, args[0]!, "prefix", "shortest");
      case "##":
        return this.trim(node, value, args[0]!, "prefix", "longest");
      case "%":
        return this.trim(node, value, args[0]!, "suffix", "shortest");
      case "%%":
        return this.trim(node, value, args[0]!, "suffix", "longest");
      default:
        return applyOperator(op, value, args);
    }
  }

  /**
   * Flux's trims (drone/envsubst): the shortest (`#`, `%`) or longest (`##`,
   * `%%`) non-empty prefix matching the glob is removed; a suffix trim
   * reverses the value and the pattern (character by character, so `[a-z]`
   * reversed is a malformed pattern there too) and trims a prefix. A
   * malformed pattern leaves the value unchanged. Prefixes are counted in
   * characters; Flux counts bytes, which differs only where it would cut a
   * multi-byte character in two (and produce invalid UTF-8).
   */
  private trim(node: FuncNode, value: string, pattern: string, side: "prefix" | "suffix", which: "shortest" | "longest"): string {
    const patternChars = Array.from(pattern);
    if (side === "suffix") patternChars.reverse();
    const glob = parseGlob(patternChars);
    if (!glob || value === "") return value;
    // Charged before any work, by UTF-16 length (at least the character count).
    this.budget.trimSteps -= value.length * (glob.length + 1);
    if (this.budget.trimSteps < 0) {
      throw new ExpansionLimitError(
        node.param,
        `the pattern trim "\${${node.param}${node.op}…}" on a value of ${value.length} characters with a pattern of ${glob.length} elements ` +
          `exceeds the limit of ${MAX_TRIM_STEPS} matching steps for the trims of one stage`,
      );
    }
    const valueChars = Array.from(value);
    if (side === "suffix") valueChars.reverse();
    const length = matchingPrefix(glob, valueChars, which);
    if (length === 0) return value;
    const kept = valueChars.slice(length);
    if (side === "suffix") kept.reverse();
    return kept.join("");
  }
}

/** The length `${v/old/new}` or `${v//old/new}` will have, computed before building it. */
function replacedLength(op: string, value: string, args: string[]): number {
  if (args.length === 0) return value.length;
  const pattern = args[0]!;
  const replacement = args[1] ?? "";
  let count: number;
  if (op === "/") count = value.includes(pattern) ? 1 : 0;
  else if (pattern === "") count = value.length + 1;
  else count = value.split(pattern).length - 1;
  return value.length + count * Math.max(0, replacement.length - pattern.length);
}

function applyOperator(op: string, value: string, args: string[]): string {
  switch (op) {
    case ",":
      return value.charAt(0).toLowerCase() + value.slice(1);
    case ",,":
      return value.toLowerCase();
    case "^":
      return value.charAt(0).toUpperCase() + value.slice(1);
    case "^^":
      return value.toUpperCase();
    case ":":
      return substring(value, args);
    case "/#":
      return args.length === 2 && value.startsWith(args[0]!) ? args[1]! + value.slice(args[0]!.length) : value;
    case "/%":
      return args.length === 2 && value.endsWith(args[0]!) ? value.slice(0, value.length - args[0]!.length) + args[1]! : value;
    case "/":
      return args.length === 0 ? value : value.replace(args[0]!, () => args[1] ?? "");
    case "//":
      return args.length === 0 ? value : value.replaceAll(args[0]!, () => args[1] ?? "");
    default:
      return value === "" && args.length > 0 ? args.join("") : value;
  }
}

/** Bash-like `${var:pos:len}` over UTF-8 bytes, as Go slices strings. */
function substring(value: string, args: string[]): string {
  const bytes = Buffer.from(value, "utf8");
  let pos = parseGoInt(args[0]);
  if (pos === undefined) return value;
  if (pos < 0) pos = Math.max(0, bytes.length + pos);
  if (args.length === 1) return pos < bytes.length ? bytes.subarray(pos).toString("utf8") : "";
  const length = parseGoInt(args[1]);
  if (length === undefined) return value;
  if (length < 0) {
    const end = bytes.length + length;
    return end < pos ? "" : bytes.subarray(pos, end).toString("utf8");
  }
  if (pos + length >= bytes.length) return pos < bytes.length ? bytes.subarray(pos).toString("utf8") : "";
  return bytes.subarray(pos, pos + length).toString("utf8");
}

function parseGoInt(text: string | undefined): number | undefined {
  if (text === undefined || !/^[-+]?[0-9]+$/.test(text)) return undefined;
  return Number.parseInt(text, 10);
}

/**
 * One element of a glob, as drone/envsubst's path.Match reads it (the copy
 * Flux uses): `*` any run of characters (slashes included), `?` any one
 * character, `[...]`/`[^...]` a class of characters and ranges, `\x` the
 * character x, anything else itself.
 */
type GlobToken =
  | { kind: "star" }
  | { kind: "any" }
  | { kind: "char"; char: string }
  | { kind: "class"; negated: boolean; ranges: number[] };

/**
 * The glob's elements, or undefined when path.Match would report
 * ErrBadPattern for it: a trailing `\`, a class that is empty, unclosed,
 * or has a range missing an end (`[]`, `[a`, `[a-]`, `[-a]`). Such a
 * pattern never matches in Flux (path.Match fails before reporting a
 * match), so the value is left unchanged.
 */
function parseGlob(chars: readonly string[]): GlobToken[] | undefined {
  const tokens: GlobToken[] = [];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === "*") {
      if (tokens[tokens.length - 1]?.kind !== "star") tokens.push({ kind: "star" });
    } else if (ch === "?") {
      tokens.push({ kind: "any" });
    } else if (ch === "\\") {
      if (++i >= chars.length) return undefined;
      tokens.push({ kind: "char", char: chars[i]! });
    } else if (ch === "[") {
      let j = i + 1;
      const negated = chars[j] === "^";
      if (negated) j++;
      const ranges: number[] = [];
      // One class character: refuses the end of the pattern, '-' and ']', unescapes '\\'; needs something after it.
      const classChar = (): number | undefined => {
        let c = chars[j];
        if (c === undefined || c === "-" || c === "]") return undefined;
        if (c === "\\") c = chars[++j];
        if (c === undefined || j + 1 >= chars.length) return undefined;
        j++;
        return c.codePointAt(0)!;
      };
      for (;;) {
        if (chars[j] === "]" && ranges.length > 0) break;
        const lo = classChar();
        if (lo === undefined) return undefined;
        let hi = lo;
        if (chars[j] === "-") {
          j++;
          const end = classChar();
          if (end === undefined) return undefined;
          hi = end;
        }
        ranges.push(lo, hi);
      }
      tokens.push({ kind: "class", negated, ranges });
      i = j;
    } else {
      tokens.push({ kind: "char", char: ch });
    }
  }
  return tokens;
}

function tokenMatches(token: GlobToken, char: string): boolean {
  switch (token.kind) {
    case "any":
      return true;
    case "char":
      return token.char === char;
    case "class": {
      const code = char.codePointAt(0)!;
      let inside = false;
      for (let k = 0; k < token.ranges.length && !inside; k += 2) inside = token.ranges[k]! <= code && code <= token.ranges[k + 1]!;
      return inside !== token.negated;
    }
    default:
      return false;
  }
}

/**
 * The length of the shortest or longest non-empty prefix of `chars` that the
 * glob matches as a whole; 0 when none does. One left-to-right pass that
 * tracks every position the glob can be at (a Thompson NFA simulation): time
 * is at most chars × (tokens + 1) steps, whatever the pattern, and there is
 * no backtracking. It gives the same answers as Flux's path.Match per prefix
 * (whose greedy chunk search is exact for these globs), in linear instead of
 * quadratic time.
 */
function matchingPrefix(glob: readonly GlobToken[], chars: readonly string[], which: "shortest" | "longest"): number {
  const m = glob.length;
  let current = new Uint8Array(m + 1);
  let next = new Uint8Array(m + 1);
  const close = (states: Uint8Array) => {
    for (let j = 0; j < m; j++) if (states[j] && glob[j]!.kind === "star") states[j + 1] = 1;
  };
  current[0] = 1;
  close(current);
  let found = 0;
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i]!;
    next.fill(0);
    let alive = false;
    for (let j = 0; j < m; j++) {
      if (!current[j]) continue;
      const token = glob[j]!;
      if (token.kind === "star") {
        next[j] = 1;
        alive = true;
      } else if (tokenMatches(token, char)) {
        next[j + 1] = 1;
        alive = true;
      }
    }
    if (!alive) break;
    close(next);
    [current, next] = [next, current];
    if (current[m]) {
      found = i + 1;
      if (which === "shortest") break;
    }
  }
  return found;
}

/**
 * Expands every `${...}` in `text`. Throws EnvsubstSyntaxError for malformed
 * expressions and UndefinedVariableError when `lookup` reports a variable as
 * undefined and no default operator covers it, and ExpansionLimitError when
 * the budget (by default a fresh one per call) runs out.
 */
export function expand(text: string, lookup: VariableLookup, budget: ExpansionBudget = newExpansionBudget()): string {
  return new Evaluator(lookup, budget).evaluate(new Parser(text).parseTemplate());
}

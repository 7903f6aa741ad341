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

class Parser {
  private pos = 0;
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
    this.pos += 2;
    const node = this.parseFunc();
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

function evaluate(nodes: Node[], lookup: VariableLookup): string {
  let out = "";
  for (const node of nodes) out += node.kind === "text" ? node.value : evaluateFunc(node, lookup);
  return out;
}

function evaluateFunc(node: FuncNode, lookup: VariableLookup): string {
  const args = node.args.map((arg) => evaluate([arg], lookup));
  const { value, defined } = lookup(node.param);
  if (!defined && !DEFAULT_OPERATORS.has(node.op)) throw new UndefinedVariableError(node.param);
  return applyOperator(node.op, value, args);
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
    case "#":
      return args.length === 0 ? String(Buffer.byteLength(value)) : trimPrefix(value, args[0]!, "shortest");
    case "##":
      return trimPrefix(value, args[0]!, "longest");
    case "%":
      return trimSuffix(value, args[0]!, "shortest");
    case "%%":
      return trimSuffix(value, args[0]!, "longest");
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

function trimPrefix(value: string, pattern: string, which: "shortest" | "longest"): string {
  const chars = Array.from(value);
  const glob = compileGlob(pattern);
  if (!glob) return value;
  let match = 0;
  for (let len = chars.length; len >= 1; len--) {
    if (glob.test(chars.slice(0, len).join(""))) {
      match = len;
      if (which === "longest") break;
    }
  }
  return chars.slice(match).join("");
}

function trimSuffix(value: string, pattern: string, which: "shortest" | "longest"): string {
  // Flux reverses both the value and the pattern and trims a prefix.
  const reverse = (s: string) => Array.from(s).reverse().join("");
  return reverse(trimPrefix(reverse(value), reverse(pattern), which));
}

/**
 * A shell glob as a RegExp: `*` any run of characters (slashes included),
 * `?` one character, `[...]`/`[^...]` classes, `\x` a literal. Undefined for a
 * malformed pattern (Flux then leaves the value unchanged).
 */
function compileGlob(pattern: string): RegExp | undefined {
  let source = "";
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === "*") source += "[\\s\\S]*";
    else if (ch === "?") source += "[\\s\\S]";
    else if (ch === "\\") {
      const literal = chars[++i];
      if (literal === undefined) return undefined;
      source += escapeRegExp(literal);
    } else if (ch === "[") {
      const close = chars.indexOf("]", i + 2);
      if (close < 0) return undefined;
      let body = chars.slice(i + 1, close);
      const negated = body[0] === "^";
      if (negated) body = body.slice(1);
      source += `[${negated ? "^" : ""}${body.map((c) => (c === "-" ? "-" : escapeRegExp(c))).join("")}]`;
      i = close;
    } else source += escapeRegExp(ch);
  }
  try {
    return new RegExp(`^${source}$`, "u");
  } catch {
    return undefined;
  }
}

function escapeRegExp(ch: string): string {
  return ch.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
}

/**
 * Expands every `${...}` in `text`. Throws EnvsubstSyntaxError for malformed
 * expressions and UndefinedVariableError when `lookup` reports a variable as
 * undefined and no default operator covers it.
 */
export function expand(text: string, lookup: VariableLookup): string {
  return evaluate(new Parser(text).parseTemplate(), lookup);
}

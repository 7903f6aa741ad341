import { UsageError } from "./errors.js";

export type ColorMode = "auto" | "always" | "never";
export const COLOR_MODES: readonly ColorMode[] = ["auto", "always", "never"];

/** `always`, or `auto` on a terminal unless NO_COLOR is set. */
export function useColor(mode: ColorMode, isTTY: boolean, env: NodeJS.ProcessEnv): boolean {
  if (mode === "always") return true;
  if (mode === "never") return false;
  return isTTY && !env.NO_COLOR;
}

export function parseColorMode(value: string): ColorMode {
  if ((COLOR_MODES as readonly string[]).includes(value)) return value as ColorMode;
  throw new UsageError(`--color ${value}: use --color=auto, --color=always or --color=never`);
}

export type Painter = (style: keyof typeof STYLES, text: string) => string;

const STYLES = { removed: "31", added: "32", hunk: "36", header: "1" } as const;

export function painter(enabled: boolean): Painter {
  return enabled ? (style, text) => `\x1b[${STYLES[style]}m${text}\x1b[0m` : (_style, text) => text;
}

/**
 * The coder: one focused cell per task, and a targeted fix of that cell when it fails.
 *
 * The offline policy fills the template's code skeleton and repairs failures by rule. A
 * model-backed coder extends it: it overrides `handle` for tasks no template codes and calls
 * `fix` first, asking a model only when `fix` gives up.
 */
import type { Agent, Cell, CodeRequest, FixRequest, KernelState, RequestOf } from "../messages.ts";
import type { Template } from "../templates/types.ts";
import { IMPORTS } from "./imports.ts";
import { closeMatches } from "./similar.ts";

/** A task names a template the coder was not given (a configuration error, not a cell's). */
export class UnknownTemplate extends Error {
  override name = "UnknownTemplate";
}

export class Coder implements Agent<"coder"> {
  protected readonly templates: ReadonlyMap<string, Template>;

  constructor(templates: readonly Template[]) {
    this.templates = new Map(templates.map((t) => [t.id, t]));
  }

  async handle(request: RequestOf<"coder">): Promise<Cell> {
    return request.kind === "fix" ? this.fix(request) : this.render(request);
  }

  protected render(request: CodeRequest): Cell {
    const id = request.task.templateId;
    const template = this.templates.get(id);
    if (!template)
      throw new UnknownTemplate(`no template "${id}" (known: ${[...this.templates.keys()].join(", ")})`);
    return { code: template.render(request.task), rule: "", gaveUp: false };
  }

  /** The smallest change to the failing cell that addresses its error, or give up. */
  fix(request: FixRequest): Cell {
    const error = request.execution.error;
    if (error) {
      for (const [rule, repair] of FIX_RULES) {
        const code = repair(request.code, error.name, error.value, request.state);
        if (code !== null && code !== request.code) return { code, rule, gaveUp: false };
      }
    }
    return { code: request.code, rule: "", gaveUp: true };
  }
}

/** The import statement that defines `name`: common aliases and every scikit-learn estimator. */
export function importLine(name: string): string | undefined {
  return IMPORTS.get(name);
}

/** A repair: the fixed cell, or null when the rule does not apply to this error. */
type Repair = (code: string, name: string, value: string, state: KernelState) => string | null;

// Python's \w and \b on identifiers: letters and digits of any script, and the underscore
const WORD = String.raw`[\p{L}\p{N}_]`;
const wholeWord = (name: string) => `(?<!${WORD})${escapeRegExp(name)}(?!${WORD})`;
const UNDEFINED = new RegExp(`name '(${WORD}+)' is not defined`, "u");
const UNEXPECTED = new RegExp(`unexpected keyword argument '(${WORD}+)'`, "u");

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}

function undefinedName(name: string, value: string): string | null {
  return name === "NameError" ? (UNDEFINED.exec(value)?.[1] ?? null) : null;
}

const missingImport: Repair = (code, name, value) => {
  const missing = undefinedName(name, value);
  const line = missing === null ? undefined : importLine(missing);
  return line ? `${line}\n${code}` : null;
};

const misspeltName: Repair = (code, name, value, state) => {
  const missing = undefinedName(name, value);
  if (missing === null) return null;
  const [close] = closeMatches(
    missing,
    state.variables.map((v) => v.name),
    1,
  );
  return close === undefined ? null : code.replace(new RegExp(wholeWord(missing), "gu"), () => close);
};

/**
 * A KeyError for columns: use the closest real column names of the frames in the kernel.
 * pandas says `'faer'` for one column and `"['Agee', 'Fare'] not in index"` for a list.
 */
const unknownColumn: Repair = (code, name, value, state) => {
  if (name !== "KeyError") return null;
  const known = [...new Set(state.variables.flatMap((v) => v.columns ?? []))];
  const single = [...value.matchAll(/'([^']+)'/g)];
  const quoted = single.length > 0 ? single : [...value.matchAll(/"([^"]+)"/g)];
  let fixed = code;
  for (const wrong of quoted.map((m) => m[1]!).filter((w) => !known.includes(w))) {
    const [close] = closeMatches(wrong, known, 1, 0.6);
    if (close === undefined) continue;
    fixed = fixed.replace(
      new RegExp(`(['"])${escapeRegExp(wrong)}\\1`, "g"),
      (_, quote: string) => quote + close + quote,
    );
  }
  return fixed !== code ? fixed : null;
};

/** An estimator given a parameter it does not have: drop it from a dict literal or a call. */
const unexpectedKeyword: Repair = (code, name, value) => {
  const key = name === "TypeError" ? UNEXPECTED.exec(value)?.[1] : undefined;
  if (key === undefined) return null;
  const entry = String.raw`\s*['"]${escapeRegExp(key)}['"]\s*:\s*[^,}]+,?`;
  const argument = String.raw`\s*(?<!${WORD})${escapeRegExp(key)}\s*=\s*[^,)]+,?`;
  return code.replace(new RegExp(`${entry}|${argument}`, "gu"), "");
};

/** The repairs, tried in this order; the first that changes the cell wins. */
export const FIX_RULES: readonly (readonly [string, Repair])[] = [
  ["add-missing-import", missingImport],
  ["rename-to-defined-variable", misspeltName],
  ["use-existing-column", unknownColumn],
  ["drop-unknown-parameter", unexpectedKeyword],
];

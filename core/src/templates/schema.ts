/**
 * The format of a template file (`prompts/<domain>/<id>.toml`): its zod schema and the
 * checks across keys that zod cannot express. prompts/README.md documents it for authors.
 */
import { z } from "zod";
import { Json, RunOptions } from "../messages.ts";
import { Condition } from "./conditions.ts";
import { GENERATORS, type GeneratorName } from "./generators.ts";

/** The planner's phases, in the order a careful analyst goes through them. */
export const PHASES = [
  "setup",
  "profile",
  "guard",
  "validation",
  "baseline",
  "model",
  "feature",
  "tuning",
  "ensemble",
  "explore",
  "final",
] as const;
export type Phase = (typeof PHASES)[number];

export const KINDS = [...PHASES, "load"] as const;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A parameter's type: a base type, `[]` for a list of them, `?` when it may be null. */
const PARAM_TYPE = /^(string|integer|number|boolean|object|any)(\[\])?(\?)?$/;

export const TemplateFile = z.strictObject({
  id: z.string().regex(/^[a-z][a-z0-9_]*$/, "lowercase letters, digits and _, starting with a letter"),
  kind: z.enum(KINDS),
  phase: z.enum(PHASES),
  /** rank within the phase, lower first; ties keep the order the files were loaded in */
  order: z.number().int().default(100),
  judged: z.boolean(),
  tags: z.array(z.string()).default([]),
  parent: z.enum(["best", "previous", "single_best", "baseline"]),
  hypothesis: z.string().min(1),
  params: z
    .record(
      z.string().regex(IDENTIFIER, "a parameter name is a Python identifier"),
      z
        .string()
        .regex(PARAM_TYPE, "a type such as string, integer, number, boolean, object, any, string[], string?"),
    )
    .default({}),
  values: z.record(z.string(), Json).default({}),
  applies: Condition.default({}),
  /** the template does not apply when any of these conditions holds */
  skip_when: z.array(Condition).default([]),
  generator: z.enum(Object.keys(GENERATORS) as [GeneratorName, ...GeneratorName[]]).optional(),
  data: z.record(z.string(), Json).optional(),
  code: z.string().optional(),
  code_file: z.string().optional(),
  prompt: z.string().optional(),
  prompt_file: z.string().optional(),
});
export type TemplateFile = z.infer<typeof TemplateFile>;

/** A zod schema for the parameter sets a template declares. */
export function paramsSchema(params: Record<string, string>) {
  return z.strictObject(
    Object.fromEntries(Object.entries(params).map(([name, type]) => [name, paramType(type)])),
  );
}

function paramType(type: string): z.ZodType<Json> {
  const [, base, list, nullable] = PARAM_TYPE.exec(type) ?? [];
  const one: z.ZodType<Json> = {
    string: z.string(),
    integer: z.number().int(),
    number: z.number(),
    boolean: z.boolean(),
    object: z.record(z.string(), Json),
    any: Json,
  }[base ?? "any"] as z.ZodType<Json>;
  const many: z.ZodType<Json> = list ? z.array(one) : one;
  return nullable ? many.nullable() : many;
}

/** `$name`, `${name}` and `$$` (a dollar sign), as Python's string.Template reads them. */
export const PLACEHOLDER = /\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\}|())/g;

/** `{name}` or `{name.key}` in a hypothesis. */
export const FIELD = /\{([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)\}/g;

/** A problem with one key of a file. */
export interface Problem {
  key: string;
  message: string;
}

/** The checks across keys; the first problem, or null. */
export function crossCheck(file: TemplateFile, code: string, prompt: string): Problem | null {
  const declared = new Set(Object.keys(file.params));
  const valueKeys = Object.keys(file.values);
  const checks: (() => Problem | null)[] = [
    () => exactlyOne(file, "code"),
    () => exactlyOne(file, "prompt"),
    () =>
      firstOf(
        valueKeys.filter((k) => !declared.has(k)),
        (k) => problem(`values.${k}`, "not a declared parameter"),
      ),
    () =>
      file.generator === undefined
        ? firstOf(
            [...declared].filter((p) => !(p in file.values)),
            (p) => problem(`values.${p}`, "missing: no value"),
          )
        : valueKeys.length > 0
          ? problem("values", `computed by the ${file.generator} generator: give no values`)
          : null,
    () =>
      file.data !== undefined && file.generator === undefined
        ? problem("data", "only for a generator")
        : null,
    () => firstOf(Object.entries(file.values), ([k, v]) => checkValue(v, `values.${k}`)),
    () => fields(file.hypothesis, declared),
    () => placeholders(code, "code", declared),
    () => placeholders(prompt, "prompt", new Set([...declared, "hypothesis", "state", "code"])),
    () =>
      file.kind === "model" && file.applies.models_compared
        ? problem("applies.models_compared", "a model template cannot wait for the model templates")
        : null,
  ];
  return firstOf(checks, (check) => check());
}

const problem = (key: string, message: string): Problem => ({ key, message });

function firstOf<T>(items: Iterable<T>, check: (item: T) => Problem | null): Problem | null {
  for (const item of items) {
    const found = check(item);
    if (found) return found;
  }
  return null;
}

function exactlyOne(file: TemplateFile, key: "code" | "prompt"): Problem | null {
  const inline = file[key] !== undefined;
  const fromFile = file[`${key}_file`] !== undefined;
  if (inline === fromFile) return problem(key, `give exactly one of ${key} and ${key}_file`);
  return null;
}

const OPTION_KEYS = new Set(Object.keys(RunOptions.shape));
const REFERENCES = new Set(["$columns", "$task", "$metric"]);

/** References (`$columns`, `$task`, `$metric`, `$options.<key>`) and `$choose` tables are known. */
function checkValue(value: Json, key: string): Problem | null {
  if (typeof value === "string") {
    if (!value.startsWith("$") || value.startsWith("$$") || REFERENCES.has(value)) return null;
    const option = value.startsWith("$options.") ? value.slice("$options.".length) : null;
    if (option !== null && OPTION_KEYS.has(option)) return null;
    return problem(
      key,
      `unknown reference ${value} (known: ${[...REFERENCES].join(", ")}, $options.<run option>)`,
    );
  }
  if (Array.isArray(value)) return firstOf(value.entries(), ([i, v]) => checkValue(v, `${key}.${i}`));
  if (value === null || typeof value !== "object") return null;
  if ("$choose" in value) {
    const choose = Choose.safeParse(value);
    return choose.success
      ? null
      : problem(key, "a $choose table is { $choose = 'best_model', cases = {...}, default = ... }");
  }
  return firstOf(Object.entries(value), ([k, v]) => checkValue(v, `${key}.${k}`));
}

/** A value picked by the best step's model: `cases[model]`, else `default`. */
export const Choose = z.strictObject({
  $choose: z.literal("best_model"),
  cases: z.record(z.string(), Json),
  default: Json,
});

function fields(hypothesis: string, declared: Set<string>): Problem | null {
  const names = [...hypothesis.matchAll(FIELD)].map((m) => m[1] as string);
  return firstOf(names, (n) =>
    declared.has(n) ? null : problem("hypothesis", `{${n}} is not a declared parameter`),
  );
}

function placeholders(text: string, key: string, known: Set<string>): Problem | null {
  for (const m of text.matchAll(PLACEHOLDER)) {
    const name = m[2] ?? m[3];
    if (m[1] !== undefined) continue;
    if (name === undefined) return problem(key, `a lone $ at offset ${m.index}: write $$ for a dollar sign`);
    if (!known.has(name)) return problem(key, `$${name} is not a declared parameter`);
  }
  return null;
}

/**
 * A template loaded from its file: when it applies, with which parameters, and how its
 * cell and prompt are filled.
 */
import type { z } from "zod";
import { UserError } from "../errors.ts";
import { Json, type Params, type RunView, type Subtask } from "../messages.ts";
import { type Facts, holds } from "./conditions.ts";
import { pyLiteral } from "./python.ts";
import { bestModel, isObject, lastDone, profileOf, singleBest } from "./run.ts";
import { Choose, FIELD, PLACEHOLDER, type TemplateFile } from "./schema.ts";
import type { Template } from "./types.ts";

/** A template file that is malformed, or a template that produced parameters it does not declare. */
export class TemplateError extends UserError {
  override name = "TemplateError";
}

/** The templates loaded together: conditions such as `models_compared` look at the others. */
export interface Library {
  templates: readonly Template[];
}

export interface TemplateParts {
  file: string;
  spec: TemplateFile;
  code: string;
  prompt: string;
  params: z.ZodType<Params>;
  /** the file's generator bound to its data, if the template has one */
  generate?: (facts: Facts) => Params[];
  library: Library;
}

export class FileTemplate implements Template {
  readonly id: string;
  readonly kind: string;
  readonly phase: string;
  readonly judged: boolean;
  readonly tags: readonly string[];
  readonly order: number;
  /** the file it was loaded from, named in errors */
  readonly file: string;

  constructor(private readonly parts: TemplateParts) {
    const { spec } = parts;
    this.id = spec.id;
    this.kind = spec.kind;
    this.phase = spec.phase;
    this.judged = spec.judged;
    this.tags = spec.tags;
    this.order = spec.order;
    this.file = parts.file;
  }

  /** The ids named in `applies.after`, to check that they exist once every file is loaded. */
  get after(): readonly string[] {
    return this.parts.spec.applies.after ?? [];
  }

  options(run: RunView): Params[] {
    const facts = this.facts(run);
    const { applies, skip_when } = this.parts.spec;
    const columns = holds(applies, facts);
    if (columns === null || skip_when.some((c) => holds(c, facts) !== null)) return [];
    const { generate, spec } = this.parts;
    const sets = generate ? generate(facts) : [resolveValues(spec.values, facts, columns)];
    return sets.map((p) => this.checked(p));
  }

  parentFor(run: RunView): number | null {
    switch (this.parts.spec.parent) {
      case "single_best":
        return singleBest(run);
      case "best":
        return run.bestStep ?? lastDone(run);
      case "previous":
        return lastDone(run);
      case "baseline":
        return acceptedBaseline(run) ?? run.bestStep ?? lastDone(run);
    }
  }

  task(params: Params, parent: number | null): Subtask {
    return {
      templateId: this.id,
      kind: this.kind,
      hypothesis: fillFields(this.parts.spec.hypothesis, params, this.file),
      params,
      judged: this.judged,
      parent,
    };
  }

  render(task: Subtask): string {
    const body = substitute(this.parts.code.replace(/^\n+|\n+$/g, ""), (name) =>
      pyLiteral(this.param(task, name)),
    );
    return `# ${task.hypothesis.replace(/\s*\n\s*/g, " ")}\n${body}\n`;
  }

  renderPrompt(task: Subtask, state: string): string {
    const extra: Record<string, string> = {
      hypothesis: task.hypothesis,
      state,
      code: this.render(task).trimEnd(),
    };
    return substitute(this.parts.prompt, (name) => extra[name] ?? readable(this.param(task, name)));
  }

  private facts(run: RunView): Facts {
    return { run, profile: profileOf(run), library: this.parts.library.templates };
  }

  private param(task: Subtask, name: string): Json {
    const value = task.params[name];
    if (value === undefined) throw new TemplateError(`${this.file}: the task has no parameter ${name}`);
    return value;
  }

  private checked(params: Params): Params {
    const parsed = this.parts.params.safeParse(params);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    const key = ["params", ...(issue?.path ?? [])].join(".");
    throw new TemplateError(`${this.file}: ${key}: ${issue?.message} (the parameters made for this run)`);
  }
}

/** The file's `[values]` with references filled from the run. */
function resolveValues(values: Params, facts: Facts, columns: string[]): Params {
  const resolve = (value: Json): Json => {
    if (typeof value === "string") return value.startsWith("$") ? reference(value, facts, columns) : value;
    if (Array.isArray(value)) return value.map(resolve);
    if (value === null || typeof value !== "object") return value;
    if ("$choose" in value) {
      const choose = Choose.parse(value); // checked when the file was loaded
      return resolve(choose.cases[bestModel(facts.run) ?? ""] ?? choose.default);
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
  };
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, resolve(v)]));
}

function reference(ref: string, { run }: Facts, columns: string[]): Json {
  if (ref.startsWith("$$")) return ref.slice(1);
  if (ref === "$columns") return columns;
  if (ref === "$task") return run.task;
  if (ref === "$metric") return run.metric;
  const options: Record<string, unknown> = run.options;
  return Json.parse(options[ref.slice("$options.".length)] ?? null);
}

/** `$name` placeholders filled by `value(name)`; `$$` is a dollar sign. */
function substitute(text: string, value: (name: string) => string): string {
  return text.replace(PLACEHOLDER, (whole, dollar?: string, name?: string, braced?: string) =>
    dollar !== undefined ? "$" : value(name ?? braced ?? whole),
  );
}

/** `{name}` and `{name.key}` filled with readable values. */
function fillFields(text: string, params: Params, file: string): string {
  return text.replace(FIELD, (_whole, name: string, keys: string) => {
    let value: Json | undefined = params[name];
    for (const key of keys.split(".").slice(1)) value = isObject(value) ? value[key] : undefined;
    if (value === undefined) throw new TemplateError(`${file}: hypothesis: no value for {${name}${keys}}`);
    return readable(value);
  });
}

/** A value as a person reads it: `n_estimators=500, learning_rate=0.02`, `5, 6, 7`, `none`. */
function readable(value: Json): string {
  if (value === null) return "none";
  if (Array.isArray(value)) return value.map(nested).join(", ");
  if (typeof value === "object")
    return Object.entries(value)
      .map(([k, v]) => `${k}=${nested(v)}`)
      .join(", ");
  return String(value);
}

const nested = (value: Json) =>
  value !== null && typeof value === "object" ? `(${readable(value)})` : readable(value);

/** The accepted dummy baseline: every model family is judged against it, so that the best
 * family leads by its score, not by its turn (a family judged against an earlier one would
 * have to beat it by a standard error, and the first good family would win every near-tie). */
function acceptedBaseline(run: RunView): number | undefined {
  return run.steps.find((s) => s.kind === "baseline" && s.verdict === "accepted")?.id;
}

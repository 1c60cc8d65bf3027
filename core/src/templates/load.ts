/**
 * Finding the templates for a run: the shipped files under prompts/tabular, then the
 * user's own folders. Every file is validated; a bad one stops the load with one line that
 * names the file and the key.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, TomlError } from "smol-toml";
import type { z } from "zod";
import type { Params } from "../messages.ts";
import { bindGenerator } from "./generators.ts";
import { crossCheck, PHASES, paramsSchema, TemplateFile } from "./schema.ts";
import { FileTemplate, type Library, TemplateError, type TemplateParts } from "./template.ts";

/** The shipped tabular templates. */
export const TABULAR_TEMPLATES = fileURLToPath(new URL("../../../prompts/tabular", import.meta.url));

/** The templates of `folder` and of each `extra` folder, in phase order, then by `order`. */
export function loadTemplates(folder: string = TABULAR_TEMPLATES, extra: string[] = []): FileTemplate[] {
  const library: { templates: FileTemplate[] } = { templates: [] };
  const seen = new Map<string, string>();
  for (const dir of [folder, ...extra]) {
    for (const file of templateFiles(dir)) {
      const template = loadFile(file, library);
      const other = seen.get(template.id);
      if (other !== undefined)
        throw new TemplateError(`${file}: id: "${template.id}" is already defined in ${other}`);
      seen.set(template.id, file);
      library.templates.push(template);
    }
  }
  for (const t of library.templates) {
    const unknown = t.after.find((id) => !seen.has(id));
    if (unknown !== undefined)
      throw new TemplateError(`${t.file}: applies.after: no template has the id "${unknown}"`);
  }
  const phase = (t: FileTemplate) => PHASES.indexOf(t.phase as (typeof PHASES)[number]);
  library.templates.sort((a, b) => phase(a) - phase(b) || a.order - b.order); // stable: ties keep file order
  return library.templates;
}

function templateFiles(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new TemplateError(`templates folder not found: ${dir}`);
  return readdirSync(dir)
    .filter((name) => name.endsWith(".toml"))
    .sort()
    .map((name) => join(dir, name));
}

/** One template file, validated. */
function loadFile(file: string, library: Library): FileTemplate {
  const spec = TemplateFile.safeParse(readToml(file));
  if (!spec.success) throw fileError(file, spec.error);
  const code = textOf(file, spec.data, "code");
  const prompt = textOf(file, spec.data, "prompt");
  const problem = crossCheck(spec.data, code, prompt);
  if (problem) throw new TemplateError(`${file}: ${problem.key}: ${problem.message}`);
  let generate: TemplateParts["generate"];
  if (spec.data.generator) {
    const bound = bindGenerator(spec.data.generator, spec.data.data ?? {}, spec.data.id);
    if ("error" in bound) throw fileError(file, bound.error, "data");
    generate = bound.generate;
  }
  const params = paramsSchema(spec.data.params) as z.ZodType<Params>;
  return new FileTemplate({ file, spec: spec.data, code, prompt, params, generate, library });
}

function readToml(file: string): unknown {
  try {
    return parse(readFileSync(file, "utf8"));
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const what = error.message.split("\n")[0]?.replace(/^Invalid TOML document: /, "");
    throw new TemplateError(`${file}: line ${error.line}, column ${error.column}: ${what}`);
  }
}

/** The inline text, or the text of the file it names (relative to the template's folder). */
function textOf(file: string, spec: TemplateFile, key: "code" | "prompt"): string {
  const inline = spec[key];
  if (inline !== undefined) return inline;
  const path = spec[`${key}_file`];
  if (path === undefined) return "";
  const full = resolve(dirname(file), path);
  if (!existsSync(full)) throw new TemplateError(`${file}: ${key}_file: not found: ${full}`);
  return readFileSync(full, "utf8");
}

function fileError(file: string, error: z.ZodError, prefix?: string): TemplateError {
  const issue = error.issues[0];
  const path = [...(prefix ? [prefix] : []), ...(issue?.path ?? []).map(String)];
  if (issue?.code === "unrecognized_keys") {
    return new TemplateError(`${file}: ${[...path, issue.keys[0]].join(".")}: unknown key`);
  }
  return new TemplateError(`${file}: ${path.join(".") || "(top level)"}: ${issue?.message}`);
}

/** Loading template files: the shipped ones validate, a bad one fails with one line naming file and key. */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PHASES } from "../../../core/src/agents/planner.ts";
import { UserError } from "../../../core/src/errors.ts";
import { loadTemplates, TABULAR_TEMPLATES } from "../../../core/src/templates/load.ts";
import { TemplateError } from "../../../core/src/templates/template.ts";

const VALID = `
id = "squares"
kind = "feature"
phase = "feature"
judged = true
parent = "best"
hypothesis = "Squares of {what} help"
code = "candidate_spec = {**spec, **$change}"
prompt = "Test: $hypothesis with $what"

[params]
change = "object"
what = "string"

[values]
change = { squares = true }
what = "the numbers"

[applies]
model_tried = true
`;

/** A generated template: its parameters come from the generator, its data from the file. */
const GENERATED = `
id = "tuned"
kind = "tuning"
phase = "tuning"
judged = true
parent = "best"
hypothesis = "Tuning {model}"
code = "candidate_spec = {**spec, **$change}"
prompt = "$hypothesis"

[params]
change = "object"
model = "string"
variant = "object"
`;

/** A folder holding the given files. */
function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "templates-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** The one-line error of loading `text` as a user template beside the shipped ones. */
function loadError(text: string): string {
  const dir = folder({ "bad.toml": text });
  try {
    loadTemplates(TABULAR_TEMPLATES, [dir]);
  } catch (error) {
    expect(error).toBeInstanceOf(TemplateError);
    expect(error).toBeInstanceOf(UserError); // the CLI prints it as one line, exit 2
    const message = (error as Error).message;
    expect(message).not.toContain("\n");
    expect(message.startsWith(join(dir, "bad.toml"))).toBe(true);
    return message.slice(join(dir, "bad.toml").length);
  }
  throw new Error("the file loaded");
}

describe("the shipped templates", () => {
  const templates = loadTemplates();

  it("load one template per file, each validated, ids unique", () => {
    const files = readdirSync(TABULAR_TEMPLATES).filter((f) => f.endsWith(".toml"));
    expect(templates.map((t) => `${t.id}.toml`).sort()).toEqual(files.sort());
  });

  it("come in phase order, the library's order within a phase", () => {
    const phases = templates.map((t) => PHASES.indexOf(t.phase as (typeof PHASES)[number]));
    expect(phases).toEqual([...phases].sort((a, b) => a - b));
    expect(templates.filter((t) => t.kind === "model").map((t) => t.id)).toEqual([
      "linear",
      "lightgbm",
      "random_forest",
      "extra_trees",
      "knn",
    ]);
  });

  it("admit user templates from other folders, placed by their phase", () => {
    const all = loadTemplates(TABULAR_TEMPLATES, [folder({ "squares.toml": VALID })]);
    const features = all.filter((t) => t.phase === "feature").map((t) => t.id);
    expect(features.at(-1)).toBe("squares");
    expect(all.findIndex((t) => t.id === "squares")).toBeLessThan(all.findIndex((t) => t.id === "tune"));
  });

  it("include the README's example, which loads", () => {
    const readme = readFileSync(join(TABULAR_TEMPLATES, "..", "README.md"), "utf8");
    const example = /## An example[\s\S]*?```toml\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
    const all = loadTemplates(TABULAR_TEMPLATES, [folder({ "squares.toml": example })]);
    expect(all.map((t) => t.id)).toContain("squares");
  });
});

describe("a malformed template file", () => {
  it.each([
    ["a TOML syntax error", "id = \n", /^: line 1, column 6: /],
    ["an unknown key", `colour = "red"\n${VALID}`, /^: colour: unknown key$/],
    ["a wrong type", VALID.replace("judged = true", 'judged = "yes"'), /^: judged: .*expected boolean/],
    ["an unknown kind", VALID.replace('kind = "feature"', 'kind = "magic"'), /^: kind: .*expected one of/],
    ["a missing key", VALID.replace('parent = "best"\n', ""), /^: parent: /],
    ["an unknown condition", `${VALID}rows_at_mots = 5\n`, /^: applies\.rows_at_mots: unknown key$/],
    ["a bad column selector", `${VALID}[applies.columns]\nkind = 3\n`, /^: applies\.columns\.kind: /],
    [
      "a bad parameter type",
      VALID.replace('what = "string"', 'what = "strnig"'),
      /^: params\.what: a type such as/,
    ],
    [
      "an undeclared cell placeholder",
      VALID.replace("$change}", "$chnage}"),
      /^: code: \$chnage is not a declared/,
    ],
    ["a lone dollar sign", VALID.replace("$change}", "$ change}"), /^: code: a lone \$ at offset/],
    ["an undeclared hypothesis field", VALID.replace("{what}", "{whom}"), /^: hypothesis: \{whom\} is not/],
    ["an undeclared prompt placeholder", VALID.replace("$what", "$who"), /^: prompt: \$who is not/],
    [
      "a value for no parameter",
      VALID.replace('what = "the numbers"', 'whom = "x"'),
      /^: values\.whom: not a declared/,
    ],
    ["a parameter without a value", VALID.replace('what = "the numbers"\n', ""), /^: values\.what: missing/],
    [
      "an unknown reference",
      VALID.replace('"the numbers"', '"$options.sed"'),
      /^: values\.what: unknown reference/,
    ],
    [
      "both code and code_file",
      `code_file = "x.py"\n${VALID}`,
      /^: code: give exactly one of code and code_file$/,
    ],
    [
      "a missing code file",
      VALID.replace('code = "', 'code_file = "nowhere.py"\n# "'),
      /^: code_file: not found: /,
    ],
    [
      "an unknown template after",
      `${VALID}after = "nothing"\n`,
      /^: applies\.after: no template has the id "nothing"$/,
    ],
    [
      "an id of a shipped template",
      VALID.replace('"squares"', '"baseline"'),
      /^: id: "baseline" is already defined in /,
    ],
    ["bad generator data", `generator = "tuning"\n${GENERATED}[data]\nvariants = 3\n`, /^: data\.variants: /],
    [
      "values given to a generator",
      VALID.replace("[params]", 'generator = "ensemble"\n[data]\nmembers = 3\n[params]'),
      /^: values: computed by the ensemble generator: give no values$/,
    ],
  ])("fails with one line naming the file and the key: %s", (_what, text, expected) => {
    expect(loadError(text)).toMatch(expected);
  });

  it("a missing folder is named", () => {
    expect(() => loadTemplates("/nowhere/templates")).toThrow(
      "templates folder not found: /nowhere/templates",
    );
  });
});

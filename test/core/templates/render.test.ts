/** Rendered cells are valid Python (the kernel interpreter compiles them); prompts and hypotheses read well. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { kernelPython, RUNTIME } from "@dsassist/sandboxes";
import { beforeAll, describe, expect, it } from "vitest";
import { Planner } from "../../../core/src/agents/planner.ts";
import type { RunView, Subtask } from "../../../core/src/messages.ts";
import { loadTemplates } from "../../../core/src/templates/load.ts";
import type { Template } from "../../../core/src/templates/types.ts";
import { metrics, summary, view } from "./fixtures.ts";

let python: string;
const TEMPLATES = loadTemplates();
const byId = new Map<string, Template>(TEMPLATES.map((t) => [t.id, t]));

/** A table with something for every feature template; regression with a skewed target for log_target. */
const RICH = {
  rows: 800,
  columns: {
    id: { kind: "identifier", missing: 0, unique: 800 },
    'it\'s "odd"': { kind: "numeric", missing: 0.1, unique: 300, skew: 2.2 },
    city: { kind: "categorical", missing: 0, unique: 30 },
    when: { kind: "datetime", missing: 0, unique: 800 },
    note: { kind: "text", missing: 0.05, unique: 700 },
  },
  suspicious: { id: "identifier: 800 distinct values in 800 rows" },
  target: { mean: 5, std: 3, min: 0, max: 90, skew: 2.8 },
  time_column: null,
  group_column: null,
};

/** One task per template, as the planner makes them over a whole run (every other step kept). */
async function tasksOfARun(run: RunView): Promise<Map<string, Subtask>> {
  const planner = new Planner(TEMPLATES, 0.5);
  const tasks = new Map<string, Subtask>();
  for (let i = 0; i < 80; i++) {
    const reply = await planner.handle({ run });
    const [task] = reply.tasks;
    if (reply.done || !task) break;
    if (!tasks.has(task.templateId)) tasks.set(task.templateId, task);
    const verdict = !task.judged ? "done" : i % 2 === 0 || task.kind === "baseline" ? "accepted" : "rejected";
    const sampled = task.kind === "explore" ? { n_estimators: 100 + i } : null;
    const params = sampled ? { ...task.params, sampled, change: { params: sampled } } : task.params;
    run.steps.push(
      summary(run.steps.length, { ...task, params }, verdict, task.judged ? metrics(0.5 + i / 100) : null),
    );
    if (verdict === "accepted") run.bestStep = run.steps.length - 1;
    run.stepsLeft -= 1;
  }
  return tasks;
}

/** Python's compile() of each cell: the error of each one that does not compile. */
function compileErrors(cells: Record<string, string>): Record<string, string> {
  const script = `
import json, sys
errors = {}
for name, code in json.load(sys.stdin).items():
    try:
        compile(code, name, "exec")
    except SyntaxError as e:
        errors[name] = f"{e.msg} at line {e.lineno}: {e.text!r}"
json.dump(errors, sys.stdout)
`;
  return JSON.parse(execFileSync(python, ["-c", script], { input: JSON.stringify(cells), encoding: "utf8" }));
}

let tasks: Map<string, Subtask>;

beforeAll(async () => {
  python = (await kernelPython()).python;
  const binary = await tasksOfARun(view({ profile: RICH, stepsLeft: 80, options: { keep: ["note"] } }));
  const regression = await tasksOfARun(
    view({ profile: RICH, stepsLeft: 80, task: "regression", options: { metric: "rmse" } }),
  );
  const open = await tasksOfARun(view({ options: { target: null } }));
  tasks = new Map([...regression, ...binary, ...open]);
});

describe("rendered cells", () => {
  it("cover every shipped template and all compile", () => {
    expect([...tasks.keys()].sort()).toEqual(TEMPLATES.map((t) => t.id).sort());
    const cells = Object.fromEntries([...tasks].map(([id, task]) => [id, byId.get(id)?.render(task) ?? ""]));
    expect(compileErrors(cells)).toEqual({});
  });

  it("start with the hypothesis as a comment and write parameters as Python literals", () => {
    const setup = tasks.get("setup") as Subtask;
    const cell = byId.get("setup")?.render(setup) ?? "";
    expect(cell.startsWith(`# ${setup.hypothesis}\n`)).toBe(true);
    expect(cell).toContain("SEED, TASK, METRIC, TARGET = 0, 'binary', 'roc_auc', 'survived'");
    expect(cell).toContain("KEEP = ['note']");
    expect(cell).toContain("df = load_table('data/titanic.csv')");
    const skewed = byId.get("log_skewed")?.render(tasks.get("log_skewed") as Subtask);
    expect(skewed).toContain(`candidate_spec = {**spec, **{'log_features': ['it\\'s "odd"']}}`);
  });

  it("the final refit records the features the model uses, not every column", () => {
    const final = byId.get("final")?.render(tasks.get("final") as Subtask) ?? "";
    expect(final).toContain('"features": [c for c in X.columns if c in used]');
    expect(final).not.toContain("list(X.columns)");
  });

  it("the explore cell is one the kernel's sampler runs", () => {
    const explore = byId.get("explore") as Template;
    const earlier = { n_estimators: 200, learning_rate: 0.05, num_leaves: 31, min_child_samples: 20 };
    const run = view();
    run.steps = [
      summary(
        0,
        {
          templateId: "lightgbm",
          kind: "model",
          hypothesis: "h",
          params: { change: { model: "lightgbm", params: {} } },
          judged: true,
          parent: null,
        },
        "accepted",
        metrics(0.8),
      ),
      summary(
        1,
        {
          templateId: "explore",
          kind: "explore",
          hypothesis: "h",
          params: { model: "lightgbm", sampled: earlier },
          judged: true,
          parent: 0,
        },
        "rejected",
        metrics(0.79),
      ),
    ];
    run.bestStep = 0;
    const params = explore.options(run)[0];
    expect(params).toMatchObject({ model: "lightgbm", trial: 2, trials: [{ params: earlier, score: 0.79 }] });
    const cell = explore.render(explore.task(params ?? {}, 0));
    const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(RUNTIME)})
from dsassist_kernel.search import sample_candidate
build_pipeline = evaluate = lambda *args: None
spec, columns, X, y, folds, TASK, METRIC, SEED = {"model": "lightgbm", "params": {}}, {}, None, None, [], "binary", "roc_auc", 0
${cell}
print(json.dumps(candidate_spec))
`;
    const candidate = JSON.parse(execFileSync(python, ["-c", script], { encoding: "utf8" }));
    expect(candidate.model).toBe("lightgbm");
    expect(Object.keys(candidate.params)).toEqual(expect.arrayContaining(["n_estimators", "learning_rate"]));
    expect(candidate.params).not.toEqual(earlier);
  });
});

describe("the cells in a kernel's order", () => {
  it("run from set-up to the final refit, which saves the features the model uses", () => {
    const titanic = fileURLToPath(new URL("../../../examples/titanic.csv", import.meta.url));
    const run = view({ options: { path: titanic, folds: 3 } });
    const cell = (id: string, params: Subtask["params"]) => {
      const template = byId.get(id) as Template;
      return template.render(template.task(params, null));
    };
    const setup = byId.get("setup")?.options(run)[0] ?? {};
    const validation = {
      scheme: "stratified",
      n_splits: 3,
      column: null,
      why: "keeps class balance per fold",
    };
    const cells = [
      cell("setup", setup),
      cell("profile", {}),
      cell("guard", {}),
      cell("validation", validation),
      cell("lightgbm", { change: { model: "lightgbm", params: { n_estimators: 20 } } }),
      "spec = candidate_spec", // the controller's acceptance of a kept step
      cell("final", {}),
    ];
    const out = mkdtempSync(join(tmpdir(), "cells-"));
    const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(RUNTIME)})
namespace = {}
for code in json.load(sys.stdin):
    exec(compile(code, "cell", "exec"), namespace)
print(json.dumps({"exclude": sorted(namespace["exclude"]), "mean": namespace["result"]["mean"]}))
`;
    const env = { ...process.env, MPLBACKEND: "Agg" };
    const input = JSON.stringify(cells);
    const printed = execFileSync(python, ["-c", script], { input, cwd: out, env, encoding: "utf8" });
    const ran = JSON.parse(printed.trimEnd().split("\n").at(-1) ?? ""); // the cells print too
    expect(ran.exclude).toContain("alive"); // a relabelling of the target
    expect(ran.mean).toBeGreaterThan(0.7);
    const meta = JSON.parse(readFileSync(join(out, "model.json"), "utf8"));
    expect(meta.features.length).toBeGreaterThan(3);
    expect(meta.features).not.toContain("alive");
    expect(meta.features).not.toContain("survived");
  });
});

describe("hypotheses and prompts", () => {
  it("fill hypotheses with readable values", () => {
    expect(tasks.get("setup")?.hypothesis).toBe("Load the data once; the target is 'survived'");
    expect(tasks.get("validation")?.hypothesis).toBe(
      "Validate with stratified 5-fold splits: keeps class balance per fold",
    );
    expect(tasks.get("tune")?.hypothesis).toMatch(
      /^Tuning \w+: \w+=[\d.]+(, \w+=[\d.]+)* beats the current settings$/,
    );
    expect(tasks.get("ensemble")?.hypothesis).toMatch(
      /^Averaging the best of steps \d+, \d+, \d+ beats each of them$/,
    );
    expect(tasks.get("other_encoding")?.hypothesis).toMatch(/^(onehot|ordinal) encoding of categoricals/);
  });

  it("fill prompts with the hypothesis, the kernel state and the reference cell", () => {
    const task = tasks.get("missing_indicators") as Subtask;
    const template = byId.get("missing_indicators") as Template;
    const prompt = template.renderPrompt(task, "X: DataFrame (800, 4)");
    expect(prompt).toContain(task.hypothesis);
    expect(prompt).toContain("X: DataFrame (800, 4)");
    expect(prompt).toContain(template.render(task).trimEnd());
    expect(prompt).not.toMatch(/\$[a-z]/);
  });
});

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { z } from "zod";
import { ReportInput } from "../../../core/src/report/input.ts";
import { answerFor, reportText, writeReport } from "../../../core/src/report/markdown.ts";
import { sourceLines, writeNotebook } from "../../../core/src/report/notebook.ts";
import { tree } from "../../../core/src/report/tree.ts";
import { DRIVERS, pathCells, reportInput, STEPS } from "./run.ts";

const SECTIONS = [
  "## Answer",
  "## Data",
  "### Excluded before modelling",
  "## Validation",
  "## Every step",
  "## What helped",
  "## Best pipeline",
  "## Plots",
  "## What drives `survived`",
  "## The experiment tree",
];

function section(report: string, heading: string): string {
  const start = report.indexOf(`${heading}\n`);
  const next = report.indexOf("\n## ", start + heading.length);
  return report.slice(start, next === -1 ? undefined : next);
}

describe("report.md", () => {
  const dir = mkdtempSync(join(tmpdir(), "dsassist-report-"));

  test("has every section, in order, with the question and the answer", async () => {
    const report = readFileSync(await writeReport(dir, reportInput()), "utf8");
    const at = SECTIONS.map((h) => report.indexOf(`${h}\n`));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect(at).toEqual([...at].sort((a, b) => a - b));
    expect(report).toMatch(/^# DSAssist report: titanic.csv\n\n\*\*Question\.\*\* Who survived, and why\?\n/);
    expect(section(report, "## Answer")).toContain("Women and first-class passengers survived most.");
    expect(report).toContain("Stopped: every phase done. Status finished, elapsed 63.3s.");
  });

  test("names each excluded column with its evidence, before the column table", () => {
    const data = section(reportText(ReportInput.parse(reportInput())), "## Data");
    const leak =
      "- I excluded **`alive`** because it leaks the target: alone it predicts the target (purity 1.000).";
    const id = "- I excluded **`passenger_id`** because it identifies rows: 891 distinct values in 891 rows.";
    expect(data).toContain(`### Excluded before modelling\n\n${leak}\n${id}\n`);
    expect(data.indexOf(leak)).toBeLessThan(data.indexOf("| column |"));
    expect(data).toContain("| alive | categorical | object | 0.0% | 2 | excluded |");
    expect(data).toContain("| age | numeric | float64 | 19.9% | 88 | yes |");
    expect(data).toContain("Target `survived`: 0: 549 (62%), 1: 342 (38%)");
    expect(data).toContain(
      "891 rows, 5 feature columns, sha256 `0123456789ab`. Task: binary, scored by roc_auc.",
    );
  });

  test("tables every step with its recorded score, gain, verdict and time", () => {
    const steps = section(reportText(ReportInput.parse(reportInput())), "## Every step");
    const rows = steps.split("\n").filter((line) => /^\| \d+ \|/.test(line));
    expect(rows.map((r) => Number(r.split("|")[1]))).toEqual(STEPS.map((s) => s.id));
    expect(rows).toContain(
      "| 3 | 2 | a linear model \\| scaled | accepted | 0.8423 ± 0.0151 | +0.3423 | 2.3s |",
    );
    expect(rows).toContain(
      "| 5 | 4 | missing ages carry signal | rejected | 0.8694 ± 0.0131 | -0.0007 | 0.5s |",
    );
    expect(rows).toContain(
      "| 6 | 4 | target-encode the cabin deck | failed: KeyError: 'deck' |  |  | 0.5s |",
    );
    expect(rows).toContain(
      "| 7 | 4 | tune the learning rate | accepted (fixed after 1) | 0.8813 ± 0.0109 | +0.0112 | 12.8s |",
    );
  });

  test("what helped lists the accepted steps and their gains only", () => {
    const helped = section(reportText(ReportInput.parse(reportInput())), "## What helped");
    const lines = helped.split("\n").filter((l) => l.startsWith("- "));
    expect(lines).toEqual([
      "- step 3, a linear model | scaled: +0.3423 roc_auc",
      "- step 4, gradient boosting beats the linear model: +0.0278 roc_auc",
      "- step 7, tune the learning rate: +0.0112 roc_auc",
    ]);
  });

  test("the best pipeline, its path and the drivers come from the recorded steps", () => {
    const report = reportText(ReportInput.parse(reportInput()));
    const best = section(report, "## Best pipeline");
    expect(best).toContain(
      'Step 7: `lightgbm {"num_leaves":15,"learning_rate":0.03}` with the kept feature changes.',
    );
    expect(best).toContain("- roc_auc: **0.8813 ± 0.0109** (folds: 0.8702, 0.8815, 0.8922)");
    expect(best).toContain("1. step 0 (profile): profile the table\n");
    expect(best).toContain("7. step 8 (final): refit on all rows\n");
    expect(best).toContain("model.pkl");
    const drivers = section(report, "## What drives `survived`");
    expect(drivers).toContain("| sex | 0.1432 | share of survived=1: female 74%, male 19% |");
    expect(section(report, "## Plots")).toContain("![final](plots/importance.png)");
  });

  test("every four-decimal number in the report is one a step or the drivers recorded", () => {
    const recorded = new Set<string>();
    const add = (x: number) => recorded.add(Math.abs(x).toFixed(4));
    for (const s of STEPS) {
      if (s.gain !== null) add(s.gain);
      if (!s.metrics) continue;
      for (const x of [
        s.metrics.mean,
        s.metrics.std,
        ...s.metrics.folds,
        ...Object.values(s.metrics.secondary),
      ])
        add(x);
    }
    for (const d of DRIVERS.columns) add(d.importance);
    const report = reportText(
      ReportInput.parse({ ...reportInput(), answer: answerFor(ReportInput.parse(reportInput())) }),
    );
    const numbers = report.match(/\d+\.\d{4}\b/g) ?? [];
    expect(numbers.length).toBeGreaterThan(20);
    expect(numbers.filter((n) => !recorded.has(n))).toEqual([]);
  });

  test("a run that stopped early still gets a report, saying what is missing", () => {
    const early = ReportInput.parse({
      ...reportInput(),
      profile: {},
      validation: {},
      drivers: {},
      steps: STEPS.slice(0, 1),
      bestStep: null,
      path: [],
      plots: [],
    });
    const report = reportText(early);
    expect(report).toContain("The profile step did not complete.");
    expect(report).toContain("No validation scheme was set up.");
    expect(report).toContain("No hypothesis beat the baseline chain beyond noise.");
    expect(section(report, "## Best pipeline")).toContain("None.");
    expect(report).toContain("Not measured: the final refit did not publish its drivers.");
    expect(answerFor(early)).toBe("No model could be validated (every phase done); see the steps below.");
  });
});

describe("answerFor", () => {
  test("states the best score against the baseline and the top drivers", () => {
    expect(answerFor(ReportInput.parse(reportInput()))).toBe(
      [
        'The best pipeline (step 7, lightgbm {"num_leaves":15,"learning_rate":0.03}) reaches roc_auc 0.8813 ± 0.0109 ' +
          "in cross-validation against 0.5000 for a dummy baseline.",
        "What drives `survived` most, by permutation importance on held-out folds:",
        "- **sex** (importance 0.1432): share of survived=1: female 74%, male 19%",
        "- **pclass** (importance 0.0611): falls as pclass rises (corr -0.34)",
      ].join("\n"),
    );
  });
});

describe("tree", () => {
  test("puts every step under its parent, marks verdicts, roots steps with unknown parents", () => {
    const orphan = { ...STEPS[5]!, id: 9, parent: 42 };
    expect(tree([...STEPS, orphan])).toBe(
      [
        "0 profile [done]",
        "└─ 1 validation [done]",
        "   └─ 2 baseline roc_auc 0.5000 [done]",
        "      └─ 3 linear roc_auc 0.8423 [kept]",
        "         └─ 4 lightgbm roc_auc 0.8701 [kept]",
        "            ├─ 5 missing_indicators roc_auc 0.8694 [dropped]",
        "            ├─ 6 target_encoding [failed]",
        "            └─ 7 tune roc_auc 0.8813 [kept]",
        "               └─ 8 final [done]",
        "9 missing_indicators roc_auc 0.8694 [dropped]",
      ].join("\n"),
    );
  });
});

/** nbformat 4.5's required structure (its JSON schema forbids other keys on cells). */
const CellId = z.string().regex(/^[a-zA-Z0-9-_]{1,64}$/);
const Source = z.array(z.string());
const Notebook = z.strictObject({
  nbformat: z.literal(4),
  nbformat_minor: z.number().int().min(5),
  metadata: z.object({
    kernelspec: z.object({ name: z.literal("python3"), display_name: z.string() }),
    language_info: z.object({ name: z.literal("python") }),
  }),
  cells: z.array(
    z.discriminatedUnion("cell_type", [
      z.strictObject({
        cell_type: z.literal("markdown"),
        id: CellId,
        metadata: z.object({}),
        source: Source,
      }),
      z.strictObject({
        cell_type: z.literal("code"),
        id: CellId,
        metadata: z.object({}),
        source: Source,
        outputs: z.array(z.unknown()),
        execution_count: z.number().int().nullable(),
      }),
    ]),
  ),
});

describe("notebook.ipynb", () => {
  test("is nbformat 4 with the winning path's cells, in order, that Python compiles", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "dsassist-nb-")), "notebook.ipynb");
    const cells = pathCells().map(({ step, code }, i) =>
      i === 3 ? { step, code: 'text = """a\nb"""\nprint(text)' } : { step, code },
    );
    await writeNotebook(path, cells, "titanic.csv: predicting survived");
    const nb = Notebook.parse(JSON.parse(readFileSync(path, "utf8")));
    const ids = nb.cells.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    const code = nb.cells.filter((c) => c.cell_type === "code").map((c) => c.source.join(""));
    expect(code).toEqual(cells.map((c) => c.code));
    expect(nb.cells[0]!.source[0]).toBe("# titanic.csv: predicting survived\n");
    expect(nb.cells[1]!.source.join("")).toBe("**Step 0**: profile the table");
    // the cells are real Python once their lines are joined
    const python = process.env.DSASSIST_PYTHON!; // set by test/global-setup.ts
    const check = `import json,sys\nnb=json.load(open(sys.argv[1]))\nfor c in nb["cells"]:\n  c["cell_type"]=="code" and compile("".join(c["source"]),"cell","exec")\nprint(nb["nbformat"])`;
    expect(execFileSync(python, ["-c", check, path], { encoding: "utf8" })).toBe("4\n");
  });

  test("source lines keep their newlines", () => {
    expect(sourceLines("a\nb\n")).toEqual(["a\n", "b\n"]);
    expect(sourceLines("a\n\nb")).toEqual(["a\n", "\n", "b"]);
    expect(sourceLines("")).toEqual([]);
  });
});

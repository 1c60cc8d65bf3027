/**
 * The whole loop through the real command line, on the shipped examples: what a user sees
 * in the run folder, the notebook a user reopens, predictions, repairs, determinism.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { cypher, dsassist, example, ROOT, stepRows } from "./cli.ts";

const tmp = () => mkdtempSync(join(tmpdir(), "dsassist-e2e-"));
const python = () => process.env.DSASSIST_PYTHON!;
const resultOf = (out: string) => JSON.parse(readFileSync(join(out, "result.json"), "utf8"));

describe("a run on titanic", () => {
  const out = join(tmp(), "run");
  let stderr = "";

  beforeAll(async () => {
    const ran = await dsassist(
      "run",
      example("titanic"),
      "--target",
      "survived",
      "--budget",
      "2m",
      "--max-steps",
      "14",
      "--seed",
      "0",
      "--out",
      out,
    );
    stderr = ran.stderr;
    expect(ran.code, ran.stderr).toBe(0);
  }, 240_000);

  it("beats the dummy baseline and says why it stopped", () => {
    const result = resultOf(out);
    expect(result.best_score).toBeGreaterThan(result.baseline_score + 0.2);
    expect(result.status).toBe("finished");
    expect(result.stop_reason).not.toBe("");
    expect(stderr).toMatch(/ 0 ← {3}- {2}done .*Load the data once/); // the live view, one line per step
  });

  it("writes every file of the run folder, and they agree with provenance", async () => {
    const result = resultOf(out);
    for (const name of [
      "report.md",
      "notebook.ipynb",
      "model.pkl",
      "model.json",
      "provenance.kuzu",
      "checkpoints",
      "work",
    ]) {
      expect(existsSync(join(out, name)), name).toBe(true);
    }
    const steps = await stepRows(out);
    expect(steps).toHaveLength(result.steps);
    expect(readdirSync(join(out, "steps"))).toHaveLength(result.steps); // a note per step
    const best = steps.find((s) => s.id === result.best_step)!;
    expect(best.score).toBeCloseTo(result.best_score, 6);
    const report = readFileSync(join(out, "report.md"), "utf8");
    expect(report).toContain(result.best_score.toFixed(4));
    expect(steps.at(-1)!.template).toBe("final");
  });

  it("excludes the leak and the relabelled duplicates, names them in the report, and the model does not use them", () => {
    const report = readFileSync(join(out, "report.md"), "utf8");
    expect(report).toMatch(/excluded \*\*`alive`\*\* because it leaks the target/);
    expect(report).toMatch(/excluded \*\*`class`\*\* because it duplicates/);
    const meta = JSON.parse(readFileSync(join(out, "model.json"), "utf8"));
    expect(meta.features).toContain("sex");
    for (const gone of ["alive", "class", "embark_town", "survived"])
      expect(meta.features).not.toContain(gone);
  });

  it("leaves a notebook that re-executes, in a plain Jupyter kernel, to the reported score", () => {
    const result = resultOf(out);
    const folder = tmp();
    const script = `
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": sys.argv[2]}}).execute()
printed = [o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream"]
print("".join(printed))
`;
    const printed = execFileSync(python(), ["-c", script, join(out, "notebook.ipynb"), folder], {
      encoding: "utf8",
    });
    const scores = [...printed.matchAll(/roc_auc: (\d\.\d{4}) ±/g)].map((m) => m[1]);
    expect(scores.at(-1)).toBe(result.best_score.toFixed(4));
  }, 120_000);

  it("predicts new rows, keeping their order, with a probability per class", async () => {
    const target = join(tmp(), "predictions.csv");
    const ran = await dsassist("predict", out, example("titanic"), "-o", target);
    expect(ran.code, ran.stderr).toBe(0);
    const lines = readFileSync(target, "utf8").trim().split("\n");
    const header = lines[0]!.split(",");
    expect(header.slice(-3)).toEqual(["prediction", "proba_0", "proba_1"]);
    const input = readFileSync(example("titanic"), "utf8").trim().split("\n");
    expect(lines).toHaveLength(input.length);
    expect(lines.slice(1, 6).map((l) => l.split(",")[6])).toEqual(
      input.slice(1, 6).map((l) => l.split(",")[6]),
    ); // fares, in order
  });

  it("names the columns a table lacks for prediction, in one line, writing nothing", async () => {
    const folder = tmp();
    writeFileSync(join(folder, "bad.csv"), "unrelated\n1\n");
    const ran = await dsassist("predict", out, join(folder, "bad.csv"), "-o", join(folder, "p.csv"));
    expect(ran.code).toBe(2);
    expect(ran.stderr.trim()).toMatch(/^error: .*lacks columns the model needs: .*sex/);
    expect(ran.stderr.trim().split("\n")).toHaveLength(1);
    expect(existsSync(join(folder, "p.csv"))).toBe(false);
  });
});

describe("repairs and determinism", () => {
  it("fixes failing cells in place and records the failure and the fix", async () => {
    const out = join(tmp(), "run");
    const ran = await dsassist(
      "run",
      example("titanic"),
      "--target",
      "survived",
      "--budget",
      "10m", // only the step limit ends it, on a loaded machine too
      "--max-steps",
      "13",
      "--seed",
      "0",
      "--out",
      out,
      "--templates",
      join(ROOT, "test/fixtures/templates"),
    );
    expect(ran.code, ran.stderr).toBe(0);
    expect(resultOf(out).fixed_steps).toBeGreaterThanOrEqual(2);
    const rows = await cypher(
      out,
      `MATCH (s:Step)-[:EXECUTED]->(e:Execution) WHERE s.template_id STARTS WITH 'probe_'
       RETURN s.template_id AS template, s.verdict AS verdict, e.attempt AS attempt, e.ok AS ok, e.fix_rule AS rule
       ORDER BY template, attempt`,
    );
    const byTemplate = (t: string) => rows.filter((r) => r.template === t).map((r) => [r.ok, r.rule]);
    expect(byTemplate("probe_import")).toEqual([
      [false, ""],
      [true, "add-missing-import"],
    ]);
    expect(byTemplate("probe_column")).toEqual([
      [false, ""],
      [true, "use-existing-column"],
    ]);
    expect(rows.some((r) => r.verdict === "failed")).toBe(false);
    const fixed = await cypher(out, "MATCH (:Code)-[:DERIVED_FROM]->(:Code) RETURN count(*) AS n");
    expect(Number(fixed[0]!.n)).toBe(2);
  }, 480_000);

  it("gives the same steps and scores for the same seed", async () => {
    const runs = [];
    for (const i of [0, 1]) {
      const out = join(tmp(), `run${i}`);
      const ran = await dsassist(
        "run",
        example("penguins"),
        "--target",
        "species",
        "--budget",
        "5m",
        "--max-steps",
        "10",
        "--seed",
        "3",
        "--out",
        out,
      );
      expect(ran.code, ran.stderr).toBe(0);
      runs.push(await stepRows(out));
    }
    expect(runs[0]).toHaveLength(10);
    expect(runs[1]).toEqual(runs[0]);
  }, 300_000);
});

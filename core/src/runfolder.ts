/**
 * The run folder: made empty before a run, and filled at its end with result.json, the
 * report, the notebook of the winning path and the final model.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { RunConfig } from "./config.ts";
import { UserError } from "./errors.ts";
import type { Loop } from "./loop.ts";
import type { Json } from "./messages.ts";
import { METRICS } from "./metrics.ts";
import type { RunStore } from "./provenance/kuzu.ts";
import { answerFor, writeNotebook, writeReport } from "./report/index.ts";
import { ReportInput } from "./report/input.ts";

/** The outcome of a run, as written to `result.json` (its keys are the file's contract). */
export interface RunResult {
  run_dir: string;
  status: "finished" | "interrupted";
  stop_reason: string;
  task: string | null;
  target: string | null;
  metric: string;
  higher_is_better: boolean;
  best_score: number | null;
  best_std: number | null;
  baseline_score: number | null;
  best_step: number | null;
  steps: number;
  failed_steps: number;
  fixed_steps: number;
  elapsed_s: number;
  validation: Record<string, Json>;
  answer: string;
}

/** An empty folder to run in; an existing one only with `overwrite`. */
export async function prepareFolder(out: string, overwrite: boolean): Promise<void> {
  if (existsSync(out)) {
    if (!(await stat(out)).isDirectory()) throw new UserError(`output folder ${out} is a file`);
    if ((await readdir(out)).length > 0) {
      if (!overwrite)
        throw new UserError(`output folder ${out} is not empty (use --overwrite to replace it)`);
      await rm(out, { recursive: true, force: true });
    }
  }
  await mkdir(out, { recursive: true });
}

export interface Finish {
  loop: Loop;
  cfg: RunConfig;
  store: RunStore;
  out: string;
  data: string;
  sha256: string;
  status: RunResult["status"];
  elapsedS: number;
}

export async function finishRun(f: Finish): Promise<RunResult> {
  const { loop, cfg, out } = f;
  const steps = loop.view.steps;
  for (const name of ["model.pkl", "model.json"]) {
    const made = join(out, "work", name);
    if (existsSync(made)) await rename(made, join(out, name));
  }
  const best = loop.best;
  const baseline = steps.find((s) => s.kind === "baseline" && s.metrics);
  const validation = loop.record("validation");
  const drivers = loop.record("final", "drivers");
  const facts = {
    steps,
    bestStep: loop.view.bestStep,
    target: cfg.target,
    drivers,
    stopReason: loop.stopReason,
  };
  const answer = answerFor(
    ReportInput.pick({ steps: true, bestStep: true, target: true, drivers: true, stopReason: true }).parse(
      facts,
    ),
  );
  const result: RunResult = {
    run_dir: out,
    status: f.status,
    stop_reason: loop.stopReason,
    task: loop.view.task,
    target: cfg.target,
    metric: loop.view.metric,
    higher_is_better: METRICS[loop.view.metric] ?? true,
    best_score: best?.metrics?.mean ?? null,
    best_std: best?.metrics?.std ?? null,
    baseline_score: baseline?.metrics?.mean ?? null,
    best_step: best?.id ?? null,
    steps: steps.length,
    failed_steps: steps.filter((s) => s.verdict === "failed").length,
    fixed_steps: steps.filter((s) => s.attempts > 1 && s.verdict !== "failed").length,
    elapsed_s: Math.round(f.elapsedS * 100) / 100,
    validation,
    answer,
  };
  const path = loop.winningPath();
  await writeReport(out, {
    question: cfg.question,
    answer,
    dataset: { path: f.data, sha256: f.sha256 },
    target: cfg.target,
    task: loop.view.task,
    metric: loop.view.metric,
    profile: loop.view.profile,
    validation,
    steps,
    bestStep: loop.view.bestStep,
    path,
    drivers,
    plots: plots(loop),
    result: { status: f.status, elapsedS: f.elapsedS },
    stopReason: loop.stopReason,
  });
  await writeNotebook(join(out, "notebook.ipynb"), path, `${basename(f.data)}: predicting ${cfg.target}`);
  await writeFile(join(out, "result.json"), `${JSON.stringify(result, null, 2)}\n`);
  await f.store.recordResult({ ...result, status: f.status });
  return result;
}

/** The profile's and the final refit's images, as the report shows them. */
function plots(loop: Loop): { title: string; path: string }[] {
  return loop.view.steps.flatMap((step) => {
    if (step.kind !== "profile" && step.kind !== "final") return [];
    const outputs = loop.executions.get(step.id)?.outputs ?? [];
    return outputs.flatMap((o) => (o.path ? [{ title: step.kind, path: o.path }] : []));
  });
}

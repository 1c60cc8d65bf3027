/**
 * How good DSAssist's final model is on held-out rows, next to FLAML and a default LightGBM.
 *
 * For each tabular dataset of the shared suite (`suite.json`, paths under `tabular/`; the text
 * one is left out), one split: 20% of the rows held out (seed 0, stratified for classification),
 * the other 80% given to three systems, each scored on the same test rows:
 * 1. DSAssist through its CLI: `dsassist run train.csv --budget B --seed 0 --max-steps 500`,
 *    then `dsassist predict` on the test rows without the target;
 * 2. FLAML: `AutoML().fit(time_budget=B, metric=roc_auc | log_loss | rmse, seed=0, n_jobs=2)`;
 * 3. LightGBM with its default parameters.
 * String columns are pandas categories for FLAML and LightGBM. Scores: ROC AUC for binary
 * targets, accuracy (and log-loss, shown but not counted) for multiclass, RMSE for regression.
 *
 * Leaks: DSAssist's profile flags columns that give the target away and DSAssist leaves them
 * out. The same check runs on the training rows; where it flags columns, FLAML and LightGBM run
 * twice, as given and without them. The fair variant (without) is the one in the main table
 * and in the counts. The fold spread is DSAssist's `best_std` in result.json, in its CV metric.
 *
 * The Python side (split, baselines, scoring) is bench/quality/helper.py, run in a venv made
 * once from bench/requirements.txt. Nothing is asserted: the bench prints figures and exits 0.
 *
 * Run: npx tsx bench/quality.ts [--budget 60] [--only titanic,tips] [--out DIR] [--data-dir DIR]
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, homedir, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { RunResult } from "../core/src/runfolder.ts";

const REPO = resolve(import.meta.dirname, "..");
const HELPER = join(REPO, "bench", "quality", "helper.py");
const REQUIREMENTS = join(REPO, "bench", "requirements.txt");
const CLI = join(REPO, "bin", "dsassist.js");
const SEED = 0;
const MAX_STEPS = 500;

type Task = "binary" | "multiclass" | "regression";
type Metric = "roc_auc" | "accuracy" | "log_loss" | "rmse";
type Scores = Partial<Record<Metric, number>>;
type System = "DSAssist" | "FLAML" | "LightGBM";
type Variant = "as given" | "without leaks";
const AS_GIVEN: Variant = "as given";
const FAIR: Variant = "without leaks";
/** The metric each system is ranked by (the suite's), and what else is shown per task. */
const PRIMARY: Record<Task, Metric> = { binary: "roc_auc", multiclass: "accuracy", regression: "rmse" };
const SHOWN: Record<Task, Metric[]> = {
  binary: ["roc_auc"],
  multiclass: ["accuracy", "log_loss"],
  regression: ["rmse"],
};
const HIGHER_IS_BETTER: Record<Metric, boolean> = {
  roc_auc: true,
  accuracy: true,
  log_loss: false,
  rmse: false,
};

interface DatasetSpec {
  name: string;
  path: string;
  target: string;
  task: Task;
}

/** What helper.py's `split` reports; the split's files are in `dir`. */
interface Split {
  dir: string;
  train_rows: number;
  test_rows: number;
  features: number;
  leaks: Record<string, string>;
}

/** One DSAssist step as its note in the run's steps/ folder tells it. */
interface StepNote {
  id: number;
  template: string;
  verdict: string;
  seconds: number;
  lesson: string;
}

/** What DSAssist's run says about itself, next to what the bench measured around it. */
interface RunFacts {
  result: RunResult;
  runWallS: number;
  model: string | null;
  notes: StepNote[];
}

/** One system on one dataset: test scores and wall time, or the error it ended with. */
interface Outcome {
  scores: Scores;
  wallS: number;
  model: string | null;
  run: RunFacts | null;
  error: string | null;
  trace: string | null;
}

interface DatasetResult {
  spec: DatasetSpec;
  split: Split | null;
  outcomes: Map<string, Outcome>; // key(system, variant) -> outcome
  error: string | null;
}

const key = (system: System, variant: Variant) => `${system}/${variant}`;

/** A system's outcome; DSAssist has only the as-given variant, and without leaks none means as given. */
function outcomeOf(result: DatasetResult, system: System, variant: Variant = FAIR): Outcome | undefined {
  if (system !== "DSAssist" && variant === FAIR && result.outcomes.has(key(system, FAIR)))
    return result.outcomes.get(key(system, FAIR));
  return result.outcomes.get(key(system, AS_GIVEN));
}

// ---- processes ----------------------------------------------------------------------------

/** A command that exited non-zero, with its last line as the message and its output as the trace. */
class CommandFailed extends Error {
  constructor(
    message: string,
    readonly trace: string,
  ) {
    super(message);
  }
}

interface Ran {
  stdout: string;
  wallS: number;
}

/** Run a command to its end; its output also goes to `log` as it comes, so a long run can be watched. */
function run(command: string, args: string[], log?: string): Promise<Ran> {
  const started = performance.now();
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  const sink = log === undefined ? null : createWriteStream(log);
  const collect = (into: Buffer[]) => (chunk: Buffer) => {
    into.push(chunk);
    sink?.write(chunk);
  };
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", collect(out));
  child.stderr.on("data", collect(err));
  return new Promise((done, fail) => {
    child.on("error", fail);
    child.on("close", (code) => {
      sink?.end();
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      if (code === 0) return done({ stdout, wallS: (performance.now() - started) / 1000 });
      const last = lastLine(stderr) || lastLine(stdout) || `exit code ${code}`;
      fail(new CommandFailed(last, `${stderr}${stdout}`.trim()));
    });
  });
}

const lastLine = (text: string) => text.trim().split("\n").at(-1)?.trim() ?? "";

/** The venv the helper runs in: made once per content of bench/requirements.txt. */
async function benchPython(): Promise<string> {
  const hash = createHash("sha256").update(readFileSync(REQUIREMENTS)).digest("hex").slice(0, 12);
  const dir = join(homedir(), ".cache", "dsassist", `bench-${hash}`);
  const python = join(dir, "bin", "python");
  const ready = join(dir, ".ready"); // written last: a venv cut off mid-install is made again
  if (existsSync(ready)) return python;
  console.log(`making the bench venv ${dir} from bench/requirements.txt (once; a few minutes)`);
  rmSync(dir, { recursive: true, force: true });
  await run("python3", ["-m", "venv", dir]);
  await run(python, ["-m", "pip", "install", "--quiet", "-r", REQUIREMENTS]);
  writeFileSync(ready, "");
  return python;
}

/** One helper.py command; it prints its answer as one JSON line, last. */
async function helper<T>(python: string, ...args: string[]): Promise<T> {
  return JSON.parse(lastLine((await run(python, [HELPER, ...args])).stdout)) as T;
}

// ---- the systems --------------------------------------------------------------------------

/** Run one system and score it; any error is kept with its trace, since a bench reports and goes on. */
async function attempt(body: () => Promise<Omit<Outcome, "error" | "trace">>): Promise<Outcome> {
  const started = performance.now();
  try {
    return { ...(await body()), error: null, trace: null };
  } catch (err) {
    const failed = err instanceof Error ? err : new Error(String(err));
    const trace = failed instanceof CommandFailed ? failed.trace : (failed.stack ?? "");
    const wallS = (performance.now() - started) / 1000;
    return { scores: {}, wallS, model: null, run: null, error: failed.message, trace };
  }
}

const score = (python: string, spec: DatasetSpec, split: Split, predictions: string) =>
  helper<Scores>(python, "score", split.dir, spec.task, spec.target, predictions);

const dsassist = (args: string[], log?: string) => run(process.execPath, [CLI, ...args], log);

/** DSAssist's run and its predictions; the run's facts are kept when what follows it fails. */
async function runDsassist(
  python: string,
  spec: DatasetSpec,
  split: Split,
  budget: number,
): Promise<Outcome> {
  let facts: RunFacts | null = null;
  const outcome = await attempt(async () => {
    const out = join(split.dir, "run");
    const predictions = join(split.dir, "dsassist.csv");
    const limits = ["--budget", `${budget}s`, "--seed", `${SEED}`, "--max-steps", `${MAX_STEPS}`];
    const train = ["run", join(split.dir, "train.csv"), "--target", spec.target, ...limits];
    const fit = await dsassist([...train, "--out", out, "--overwrite"], join(split.dir, "dsassist-run.log"));
    const result = JSON.parse(readFileSync(join(out, "result.json"), "utf8")) as RunResult;
    facts = { result, runWallS: fit.wallS, model: bestModel(out), notes: stepNotes(out) };
    const apply = await dsassist(["predict", out, join(split.dir, "test.csv"), "-o", predictions]);
    const scores = await score(python, spec, split, predictions);
    return { scores, wallS: fit.wallS + apply.wallS, model: facts.model, run: facts };
  });
  return { ...outcome, run: facts };
}

function bestModel(out: string): string | null {
  const meta = join(out, "model.json");
  if (!existsSync(meta)) return null;
  return (JSON.parse(readFileSync(meta, "utf8")) as { spec?: { model?: string } }).spec?.model ?? null;
}

/** The steps as the run's notes (steps/NNN-template.md) tell them: what each took and taught. */
function stepNotes(out: string): StepNote[] {
  const folder = join(out, "steps");
  if (!existsSync(folder)) return [];
  return readdirSync(folder)
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => {
      const text = readFileSync(join(folder, name), "utf8");
      const verdict = /- verdict: \*\*(\w+)\*\*; time: ([\d.]+)s/.exec(text);
      return {
        id: Number(/^# Step (\d+)/.exec(text)?.[1] ?? -1),
        template: /- template: `([^`]+)`/.exec(text)?.[1] ?? "?",
        verdict: verdict?.[1] ?? "?",
        seconds: Number(verdict?.[2] ?? Number.NaN),
        lesson: /\*\*Lesson\.\*\* (.*)/.exec(text)?.[1] ?? "",
      };
    });
}

function runBaseline(
  python: string,
  system: "FLAML" | "LightGBM",
  variant: Variant,
  spec: DatasetSpec,
  split: Split,
  budget: number,
): Promise<Outcome> {
  return attempt(async () => {
    const predictions = join(split.dir, `${system}-${variant.replace(/ /g, "-")}.csv`.toLowerCase());
    const drop = variant === FAIR ? Object.keys(split.leaks).join(",") : "";
    const args = [system.toLowerCase(), split.dir, spec.task, spec.target, `${budget}`, drop, predictions];
    const fit = await helper<{ wall_s: number; model: string }>(python, "baseline", ...args);
    const scores = await score(python, spec, split, predictions);
    return { scores, wallS: fit.wall_s, model: fit.model, run: null };
  });
}

async function runDataset(
  python: string,
  spec: DatasetSpec,
  budget: number,
  root: string,
): Promise<DatasetResult> {
  heading(`${spec.name}: ${spec.task}, target '${spec.target}'`);
  const dir = join(root, spec.name);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755); // the kernel runs as the run's own user and must reach the data
  let split: Split;
  try {
    split = {
      ...(await helper<Omit<Split, "dir">>(python, "split", spec.path, spec.target, spec.task, dir)),
      dir,
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    console.log(err instanceof CommandFailed ? err.trace : message);
    return { spec, split: null, outcomes: new Map(), error: message };
  }
  const leaks = Object.keys(split.leaks).length > 0 ? JSON.stringify(split.leaks) : "none";
  console.log(
    `${split.train_rows} training rows, ${split.test_rows} test rows, ${split.features} feature columns;` +
      ` leaky: ${leaks}; ${loadAverage()}`,
  );
  const outcomes = new Map<string, Outcome>();
  const record = (system: System, variant: Variant, outcome: Outcome) => {
    outcomes.set(key(system, variant), outcome);
    progress(`${system}${system === "DSAssist" ? "" : ` (${variant})`}`, outcome);
  };
  record("DSAssist", AS_GIVEN, await runDsassist(python, spec, split, budget));
  const variants = Object.keys(split.leaks).length > 0 ? [AS_GIVEN, FAIR] : [AS_GIVEN];
  for (const variant of variants) {
    for (const system of ["FLAML", "LightGBM"] as const)
      record(system, variant, await runBaseline(python, system, variant, spec, split, budget));
  }
  return { spec, split, outcomes, error: null };
}

// ---- formatting ---------------------------------------------------------------------------

function loadAverage(): string {
  const [one = 0, five = 0] = loadavg();
  return `load average ${one.toFixed(2)} (1 min), ${five.toFixed(2)} (5 min)`;
}

function heading(text: string): void {
  console.log(`\n== ${text} ${"=".repeat(Math.max(0, 88 - text.length))}`);
}

function fmt(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "-";
  return Math.abs(value) >= 1000 ? value.toFixed(0) : value.toFixed(4);
}

function progress(name: string, outcome: Outcome): void {
  if (outcome.error !== null) {
    console.log(`  .. ${name}: error after ${outcome.wallS.toFixed(1)} s: ${outcome.error}`);
    return;
  }
  const scores = Object.entries(outcome.scores).map(([m, v]) => `${m} ${fmt(v)}`);
  console.log(
    `  .. ${name}: ${scores.join(", ")} in ${outcome.wallS.toFixed(1)} s (${outcome.model ?? "-"})`,
  );
}

/** How much better a is than b, positive when a is better, in the metric's units. */
const orientedGain = (a: number, b: number, metric: Metric) => (HIGHER_IS_BETTER[metric] ? a - b : b - a);

/** DSAssist / other for scores, other / DSAssist for losses: > 1 means DSAssist is better. */
function ratio(dsassist: number, other: number, metric: Metric): number {
  const [num, den] = HIGHER_IS_BETTER[metric] ? [dsassist, other] : [other, dsassist];
  return den === 0 ? Number.NaN : num / den;
}

const scoreOf = (outcome: Outcome | undefined, metric: Metric) =>
  outcome !== undefined && outcome.error === null ? (outcome.scores[metric] ?? null) : null;

/** DSAssist's fold spread, when its CV metric is the metric shown. */
function spread(result: DatasetResult, metric: Metric): number | null {
  const run = outcomeOf(result, "DSAssist")?.run;
  return run && run.result.metric === metric ? run.result.best_std : null;
}

/** The run's wall time over its budget, in percent (negative: it finished early). */
const overrun = (run: RunFacts, budget: number) => (100 * (run.runWallS - budget)) / budget;

const COLUMNS: [string, number][] = [
  ["dataset", 9],
  ["task", 10],
  ["metric", 10],
  ["DSAssist", 9],
  ["FLAML", 9],
  ["LightGBM", 9],
  ["t DSA", 6],
  ["t FLAML", 7],
  ["t LGBM", 6],
  ["DSA/FLAML", 9],
  ["spread", 7],
  ["DSA-LGBM", 9],
  ["run/budget", 10],
  ["over", 6],
];

/** The first three cells left-aligned, the figures right-aligned, to the widths of COLUMNS. */
const aligned = (cells: string[]) =>
  cells.map((c, i) => (i < 3 ? c.padEnd(COLUMNS[i]?.[1] ?? 0) : c.padStart(COLUMNS[i]?.[1] ?? 0))).join(" ");

function cell(outcome: Outcome | undefined, metric: Metric): string {
  if (outcome === undefined) return "-";
  return outcome.error !== null ? "error" : fmt(outcome.scores[metric]);
}

const wall = (outcome: Outcome | undefined) => (outcome === undefined ? "-" : `${outcome.wallS.toFixed(0)}s`);

function tableRow(result: DatasetResult, metric: Metric, budget: number): string {
  const counted = metric === PRIMARY[result.spec.task];
  const [dsa, fl, lg] = (["DSAssist", "FLAML", "LightGBM"] as const).map((s) => outcomeOf(result, s));
  const [d, f, g] = [dsa, fl, lg].map((o) => scoreOf(o, metric));
  const fair = result.split && Object.keys(result.split.leaks).length > 0 ? "*" : "";
  const r = d != null && f != null ? ratio(d, f, metric) : null;
  const gap = d != null && g != null ? orientedGain(d, g, metric) : null;
  const run = counted ? dsa?.run : undefined;
  return aligned([
    result.spec.name,
    result.spec.task,
    counted ? metric : `(${metric})`,
    cell(dsa, metric),
    cell(fl, metric) + fair,
    cell(lg, metric) + fair,
    wall(dsa),
    wall(fl),
    wall(lg),
    r === null ? "-" : r.toFixed(4),
    counted ? fmt(spread(result, metric)) : "",
    gap === null ? "-" : `${gap >= 0 ? "+" : ""}${Math.abs(gap) < 1000 ? gap.toFixed(4) : gap.toFixed(0)}`,
    run ? `${run.runWallS.toFixed(0)}/${budget}s` : "",
    run ? `${overrun(run, budget) >= 0 ? "+" : ""}${overrun(run, budget).toFixed(0)}%` : "",
  ]);
}

function printTable(results: DatasetResult[], budget: number): void {
  heading("test scores on the held-out 20% (seed 0)");
  console.log(aligned(COLUMNS.map(([name]) => name)));
  for (const result of results) {
    if (result.error !== null) {
      console.log(`${result.spec.name.padEnd(9)} ${result.spec.task.padEnd(10)} error: ${result.error}`);
      continue;
    }
    for (const metric of SHOWN[result.spec.task]) console.log(tableRow(result, metric, budget));
  }
  console.log(
    [
      "",
      "DSA/FLAML: DSAssist / FLAML for AUC and accuracy, FLAML / DSAssist for RMSE and log-loss, so > 1 means DSAssist is better.",
      "DSA-LGBM: DSAssist minus LightGBM, oriented so > 0 means DSAssist is better (metric units).",
      "spread: DSAssist's fold spread (result.json best_std of its best pipeline, in its CV metric).",
      "*: FLAML and LightGBM without the leaky columns (the fair variant; DSAssist drops them too).",
      "(metric): shown, not counted. t: wall time of fit and predict, in seconds (DSAssist: both CLI calls).",
      "run/budget: the `dsassist run` process's wall time against --budget; over: by how much it overran.",
    ].join("\n"),
  );
}

function printAsGiven(results: DatasetResult[]): void {
  heading("datasets with leaky columns: FLAML and LightGBM as given vs without them");
  const leaky = results.filter((r) => r.split && Object.keys(r.split.leaks).length > 0);
  if (leaky.length === 0) {
    console.log("no leaky columns flagged");
    return;
  }
  const names = ["FLAML", "t FLAML", "LightGBM", "t LGBM"].map((n) => n.padStart(8));
  console.log(`${"dataset".padEnd(9)} ${"metric".padEnd(8)} ${"variant".padEnd(14)} ${names.join(" ")}`);
  for (const result of leaky) {
    const metric = PRIMARY[result.spec.task];
    for (const variant of [AS_GIVEN, FAIR]) {
      const [fl, lg] = [
        result.outcomes.get(key("FLAML", variant)),
        result.outcomes.get(key("LightGBM", variant)),
      ];
      const figures = [cell(fl, metric), wall(fl), cell(lg, metric), wall(lg)].map((c) => c.padStart(8));
      console.log(
        `${result.spec.name.padEnd(9)} ${metric.padEnd(8)} ${variant.padEnd(14)} ${figures.join(" ")}`,
      );
    }
    console.log(
      `${"".padEnd(18)} ${"DSAssist".padEnd(14)} ${cell(outcomeOf(result, "DSAssist"), metric).padStart(8)}`,
    );
    for (const [column, why] of Object.entries(result.split?.leaks ?? {}))
      console.log(`${"".padEnd(9)} leaky '${column}': ${why}`);
  }
}

function printDetails(results: DatasetResult[], budget: number): void {
  heading("what each run did");
  const pad = "".padEnd(9);
  for (const result of results) {
    const run = outcomeOf(result, "DSAssist")?.run;
    if (run) {
      const r = run.result;
      console.log(
        `${result.spec.name.padEnd(9)} DSAssist: CV ${r.metric} ${fmt(r.best_score)} ± ${fmt(r.best_std)},` +
          ` best model ${run.model ?? "none"}, ${r.steps} steps (${r.failed_steps} failed, ${r.fixed_steps} fixed),` +
          ` run ${r.elapsed_s.toFixed(0)} s (process ${run.runWallS.toFixed(0)} s of ${budget} s), stop: ${r.stop_reason}`,
      );
      if (r.task !== result.spec.task)
        console.log(`${pad} note: DSAssist inferred task '${r.task}', the suite says '${result.spec.task}'`);
      const slowest = [...run.notes].sort((a, b) => b.seconds - a.seconds).slice(0, 3);
      console.log(
        `${pad}   slowest steps: ${slowest.map((n) => `${n.id} ${n.template} ${n.seconds.toFixed(1)}s`).join(", ")}`,
      );
      for (const note of run.notes.filter((n) => n.verdict === "failed"))
        console.log(`${pad}   failed step ${note.id} ${note.template}: ${note.lesson}`);
    }
    const fl = outcomeOf(result, "FLAML");
    const name = run ? pad : result.spec.name.padEnd(9);
    if (fl && fl.error === null) console.log(`${name} FLAML: best estimator ${fl.model}`);
  }
}

// ---- counts -------------------------------------------------------------------------------

/** Wins, ties (equal to 1e-12 relative, as quality.py) and losses of DSAssist on the primary metric. */
function compare(results: DatasetResult[], other: System, variant: Variant) {
  let wins = 0;
  let ties = 0;
  let losses = 0;
  for (const result of results) {
    const metric = PRIMARY[result.spec.task];
    const d = scoreOf(outcomeOf(result, "DSAssist"), metric);
    const o = scoreOf(outcomeOf(result, other, variant), metric);
    if (d === null || o === null) continue;
    const gain = orientedGain(d, o, metric);
    if (Math.abs(gain) <= 1e-12 * Math.max(1, Math.abs(o))) ties++;
    else if (gain > 0) wins++;
    else losses++;
  }
  return { wins, ties, losses, n: wins + ties + losses };
}

/** Datasets where DSAssist trails LightGBM (fair) by more than its fold spread, and the unchecked ones. */
function worseThanSpread(results: DatasetResult[]) {
  const worse: string[] = [];
  const unchecked: string[] = [];
  for (const result of results) {
    const metric = PRIMARY[result.spec.task];
    const d = scoreOf(outcomeOf(result, "DSAssist"), metric);
    const g = scoreOf(outcomeOf(result, "LightGBM"), metric);
    const s = spread(result, metric);
    if (d === null || g === null || s === null) unchecked.push(result.spec.name);
    else if (orientedGain(d, g, metric) < -s)
      worse.push(`${result.spec.name} (behind by ${fmt(-orientedGain(d, g, metric))} > ${fmt(s)})`);
  }
  return { worse, unchecked, checked: results.length - unchecked.length };
}

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** DSAssist's primary-metric ratio to `other` (fair variant) per dataset, > 1 when DSAssist is better. */
function ratios(results: DatasetResult[], other: System): number[] {
  return results.flatMap((result) => {
    const metric = PRIMARY[result.spec.task];
    const d = scoreOf(outcomeOf(result, "DSAssist"), metric);
    const o = scoreOf(outcomeOf(result, other), metric);
    return d === null || o === null ? [] : [ratio(d, o, metric)];
  });
}

function printCounts(results: DatasetResult[], budget: number): void {
  heading("counts (primary metric: AUC, accuracy or RMSE)");
  for (const other of ["FLAML", "LightGBM"] as const) {
    for (const variant of [FAIR, AS_GIVEN]) {
      const { wins, ties, losses, n } = compare(results, other, variant);
      const label = variant === FAIR ? "fair: without leaky columns" : "as given, leaky columns kept";
      const counted = variant === FAIR ? "   <- counted" : "";
      console.log(
        `DSAssist vs ${other.padEnd(8)} (${label}): wins ${wins} of ${n}, ties ${ties}, losses ${losses}${counted}`,
      );
    }
  }
  const { wins, ties, n } = compare(results, "FLAML", FAIR);
  const { worse, unchecked, checked } = worseThanSpread(results);
  const runs = results.flatMap((r) => outcomeOf(r, "DSAssist")?.run ?? []);
  console.log(
    `\nDSAssist >= FLAML on ${wins + ties} of ${n} (fair variant; no tolerance: a tie is equal to 1e-12)`,
  );
  console.log(
    `never below default LightGBM by more than the fold spread: ${checked - worse.length} of ${checked}` +
      (worse.length > 0 ? `; below on ${worse.join(", ")}` : "") +
      (unchecked.length > 0 ? ` (not checked: ${unchecked.join(", ")})` : ""),
  );
  console.log(
    `medians: DSA/FLAML ${fmt(median(ratios(results, "FLAML")))}, DSA/LGBM ${fmt(median(ratios(results, "LightGBM")))}` +
      ` (> 1: DSAssist better); DSAssist run ${median(runs.map((r) => r.runWallS)).toFixed(0)} s of ${budget} s,` +
      ` overrun ${median(runs.map((r) => overrun(r, budget))).toFixed(1)}%`,
  );
}

function printErrors(results: DatasetResult[]): void {
  const failures = results.flatMap((r) =>
    [...r.outcomes].filter(([, o]) => o.error !== null).map(([k, o]) => ({ name: r.spec.name, k, o })),
  );
  heading(`errors: ${failures.length}`);
  for (const { name, k, o } of failures) console.log(`-- ${name} / ${k}: ${o.error}\n${o.trace}`);
}

// ---- main ---------------------------------------------------------------------------------

interface SuiteEntry {
  name: string;
  path: string;
  target: string;
  task: Task;
}

function readSuite(dataDir: string): DatasetSpec[] {
  const suite = JSON.parse(readFileSync(join(dataDir, "suite.json"), "utf8")) as { datasets: SuiteEntry[] };
  return suite.datasets
    .filter((d) => d.path.startsWith("tabular/"))
    .map((d) => ({ name: d.name, path: join(dataDir, d.path), target: d.target, task: d.task }));
}

function chosen(specs: DatasetSpec[], names: string): DatasetSpec[] {
  const wanted = names
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean);
  if (wanted.length === 0) return specs;
  const unknown = wanted.filter((n) => !specs.some((s) => s.name === n));
  if (unknown.length > 0)
    console.log(
      `unknown datasets skipped: ${unknown.join(", ")} (known: ${specs.map((s) => s.name).join(", ")})`,
    );
  return specs.filter((s) => wanted.includes(s.name));
}

function options() {
  const { values } = parseArgs({
    options: {
      budget: { type: "string", default: "60" },
      only: { type: "string", default: "" },
      out: { type: "string" },
      "data-dir": { type: "string", default: resolve(REPO, "..", "shared", "data", "dev") },
    },
  });
  const budget = Number(values.budget);
  if (!(budget > 0)) throw new Error(`--budget must be a number of seconds above 0, not '${values.budget}'`);
  return { budget, only: values.only, out: values.out, dataDir: values["data-dir"] };
}

async function main(): Promise<void> {
  const opts = options();
  const specs = chosen(readSuite(opts.dataDir), opts.only);
  const root = opts.out ? resolve(opts.out) : mkdtempSync(join(tmpdir(), "dsassist-quality-"));
  mkdirSync(root, { recursive: true });
  chmodSync(root, 0o755);
  const started = performance.now();
  const python = await benchPython();
  const v = await helper<Record<string, string>>(python, "versions");
  const dsassist = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string })
    .version;
  console.log(
    `node ${process.versions.node}, dsassist ${dsassist}; bench venv: python ${v.python}, flaml ${v.flaml},` +
      ` lightgbm ${v.lightgbm}, scikit-learn ${v["scikit-learn"]}`,
  );
  console.log(
    `${cpus().length} CPUs, ${loadAverage()}; budget ${opts.budget} s; data ${opts.dataDir}; work ${root}`,
  );
  console.log(`datasets: ${specs.map((s) => s.name).join(", ")}`);
  const results: DatasetResult[] = [];
  for (const spec of specs) results.push(await runDataset(python, spec, opts.budget, root));
  printTable(results, opts.budget);
  printAsGiven(results);
  printDetails(results, opts.budget);
  printCounts(results, opts.budget);
  printErrors(results);
  console.log(
    `\nbenchmark wall time ${((performance.now() - started) / 1000).toFixed(0)} s; ${loadAverage()}`,
  );
  if (!opts.out) rmSync(root, { recursive: true, force: true });
}

/** Only the set-up can fail the bench (a bad option, no venv): one line, exit 2; a system's failure is a figure. */
try {
  await main();
} catch (err) {
  console.error(`quality: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 2;
}

/**
 * The core's public surface: run, resume, predict. The CLI calls these, and so will the
 * MCP server and the Slack bot. It only wires the parts together; each part owns its logic.
 */
import { randomUUID } from "node:crypto";
import { stat } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { kernelPython, SandboxError } from "@dsassist/sandboxes";
import { Coder } from "./agents/coder.ts";
import { Evaluator } from "./agents/evaluator.ts";
import { Planner } from "./agents/planner.ts";
import { Reflector } from "./agents/reflector.ts";
import type { Agents } from "./bus/bus.ts";
import { InProcessBus } from "./bus/inprocess.ts";
import { loadFileConfig, RunConfig, type RunConfigInput, runConfig } from "./config.ts";
import { Controller, type Progress } from "./controller.ts";
import { inspectTable, type TableInfo } from "./data.ts";
import { UserError } from "./errors.ts";
import { Loop } from "./loop.ts";
import { type Json, RunOptions, type Task } from "./messages.ts";
import { DEFAULT_METRIC, METRICS, REGRESSION_METRICS } from "./metrics.ts";
import { RunStore } from "./provenance/kuzu.ts";
import { finishRun, prepareFolder, type RunResult } from "./runfolder.ts";
import { openSandboxes } from "./sandboxes.ts";
import { loadTemplates } from "./templates/load.ts";
import type { Template } from "./templates/types.ts";

export type { Progress } from "./controller.ts";
export { predict } from "./predict.ts";
export type { RunResult } from "./runfolder.ts";

export interface RunHooks {
  onStep?: (progress: Progress) => void;
  /** one line of progress outside the steps (setting up the kernel environment) */
  onInfo?: (line: string) => void;
  /** aborting stops the run: steps in flight are redone by a resume */
  signal?: AbortSignal;
}

/** Run the closed loop on a table and write the run folder. Bad input: a UserError, nothing written. */
export async function run(flags: RunConfigInput, hooks: RunHooks = {}): Promise<RunResult> {
  const enteredAt = performance.now(); // the budget covers the set-up too
  const { file, config: fileConfig } = loadFileConfig(flags.configFile ?? undefined);
  const cfg = runConfig(flags, fileConfig, file);
  const env = await kernelPython({ python: cfg.python ?? undefined, onProgress: hooks.onInfo });
  const data = resolve(cfg.data);
  const table = await inspectTable(env, data, cfg.target);
  if (cfg.target === null) throw new UserError("give --target (the column to predict)");
  const options = runOptions(cfg, table, data);
  const templates = loadTemplates(undefined, cfg.templates);
  const out = resolve(cfg.out);
  await prepareFolder(out, cfg.overwrite);
  const store = await RunStore.open(out);
  await store.recordRun({
    id: randomUUID(),
    dataset: {
      path: data,
      sha256: table.sha256,
      bytes: (await stat(data)).size,
      rows: table.rows,
      columns: table.columns.length,
      mediaType: MEDIA_TYPES[table.format],
    },
    target: cfg.target,
    task: options.task,
    metric: options.metric,
    question: cfg.question,
    seed: cfg.seed,
    budget: { wall_s: cfg.budgetS, steps: cfg.maxSteps },
    options,
    config: JSON.parse(JSON.stringify(cfg)) as Record<string, Json>,
    startedAt: new Date().toISOString(),
  });
  const loop = Loop.fresh(options, cfg.budgetS, cfg.maxSteps);
  return drive({
    loop,
    cfg,
    templates,
    store,
    out,
    data,
    sha256: table.sha256,
    env,
    hooks,
    spentS: 0,
    enteredAt,
  });
}

/** Continue a run stopped at any point: completed steps are kept, not repeated. */
export async function resume(runDir: string, hooks: RunHooks = {}): Promise<RunResult> {
  const enteredAt = performance.now();
  const out = resolve(runDir);
  const store = await RunStore.openExisting(out);
  try {
    const recorded = await store.run();
    if (recorded === null) throw new UserError(`no run to resume in ${runDir}: it was never recorded`);
    if (recorded.status !== "running" && recorded.status !== "interrupted") {
      throw new UserError(`the run in ${runDir} is already ${recorded.status}: nothing to resume`);
    }
    const cfg = RunConfig.parse(recorded.config);
    const env = await kernelPython({ python: cfg.python ?? undefined, onProgress: hooks.onInfo });
    const table = await inspectTable(env, recorded.dataset.path, cfg.target);
    if (table.sha256 !== recorded.dataset.sha256) {
      throw new UserError(
        `${recorded.dataset.path} changed since the run started (sha256 differs): start a new run`,
      );
    }
    const options = RunOptions.parse(recorded.options);
    const loop = Loop.fresh(options, cfg.budgetS, cfg.maxSteps);
    for (const { summary, execution, code } of await store.steps()) loop.add(summary, execution, code);
    const spentS = loop.view.steps.reduce((sum, s) => sum + s.durationS, 0);
    const templates = loadTemplates(undefined, cfg.templates);
    return await drive({
      loop,
      cfg,
      templates,
      store,
      out,
      data: recorded.dataset.path,
      sha256: table.sha256,
      env,
      hooks,
      spentS,
      enteredAt,
    });
  } catch (error) {
    await store.close();
    throw error;
  }
}

interface Drive {
  loop: Loop;
  cfg: RunConfig;
  templates: Template[];
  store: RunStore;
  out: string;
  data: string;
  sha256: string;
  env: Awaited<ReturnType<typeof kernelPython>>;
  hooks: RunHooks;
  /** seconds spent by earlier sessions of this run (a resume) */
  spentS: number;
  /** when this session entered the API (performance.now()): set-up counts against the budget */
  enteredAt: number;
}

/** Run the loop from wherever it stands to the end, then write the run folder's results. */
async function drive(d: Drive): Promise<RunResult> {
  const { loop, cfg, store, out } = d;
  const bus = new InProcessBus(agents(d.templates, cfg.exploreShare));
  const sandboxes = await openSandboxes(cfg, d.env, out, d.data);
  const spentS = d.spentS + (performance.now() - d.enteredAt) / 1000;
  const controller = new Controller({
    bus,
    sandboxes,
    recorder: store,
    runDir: out,
    budgetS: cfg.budgetS,
    maxSteps: cfg.maxSteps,
    cellTimeoutS: cfg.cellTimeoutS,
    maxFixAttempts: cfg.maxFixAttempts,
    onStep: d.hooks.onStep,
    spentS,
  });
  const stop = () => controller.stop();
  d.hooks.signal?.addEventListener("abort", stop, { once: true });
  const started = performance.now() / 1000 - spentS;
  let status: RunResult["status"] = "finished";
  try {
    await controller.run(loop);
  } catch (error) {
    // a kernel that cannot be brought back: the steps so far are recorded, the report says
    // why the run stopped, and a resume goes on from there
    if (!(error instanceof SandboxError)) throw error;
    loop.stopReason = `stopped: ${error.message} (dsassist resume ${out} goes on from here)`;
    status = "interrupted";
  } finally {
    d.hooks.signal?.removeEventListener("abort", stop);
    await Promise.all(sandboxes.map((s) => s.close()));
  }
  if (d.hooks.signal?.aborted) status = "interrupted";
  const elapsedS = performance.now() / 1000 - started;
  try {
    return await finishRun({ loop, cfg, store, out, data: d.data, sha256: d.sha256, status, elapsedS });
  } finally {
    await bus.close();
    await store.close();
  }
}

const MEDIA_TYPES = {
  csv: "text/csv",
  tsv: "text/tab-separated-values",
  parquet: "application/vnd.apache.parquet",
};

/** The offline policies, one per role. */
export function agents(templates: Template[], exploreShare: number): Agents {
  return {
    planner: new Planner(templates, exploreShare),
    coder: new Coder(templates),
    evaluator: new Evaluator(),
    reflector: new Reflector(),
  };
}

/** The user's choices as the planner sees them, checked against the table. */
function runOptions(cfg: RunConfig, table: TableInfo, data: string) {
  const task = table.task as Task;
  const metric = cfg.metric ?? DEFAULT_METRIC[task];
  if (!(metric in METRICS)) {
    throw new UserError(`unknown metric "${metric}": choose from ${Object.keys(METRICS).join(", ")}`);
  }
  if ((task === "regression") !== REGRESSION_METRICS.has(metric)) {
    throw new UserError(`metric "${metric}" does not fit a ${task} task`);
  }
  const named: [string, string | null][] = [
    ["group column", cfg.groupColumn],
    ["time column", cfg.timeColumn],
    ...cfg.keep.map((c): [string, string] => ["kept column", c]),
  ];
  for (const [what, column] of named) {
    if (column !== null && !table.columns.includes(column)) {
      throw new UserError(`${what} "${column}" not in ${basename(data)}`);
    }
  }
  return RunOptions.parse({
    path: data,
    target: cfg.target,
    question: cfg.question,
    seed: cfg.seed,
    task,
    metric,
    groupColumn: cfg.groupColumn,
    timeColumn: cfg.timeColumn,
    keep: cfg.keep,
    folds: cfg.folds,
    exploreShare: cfg.exploreShare,
  });
}

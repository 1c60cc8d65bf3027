/**
 * The `dsassist` command line: `run` a closed loop on a table, `resume` it, `predict` with
 * its model, `doctor` to see what this machine offers. A user's mistake is one line on
 * stderr and exit code 2; nothing is written before it.
 */

import { SandboxError } from "@dsassist/sandboxes";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import * as api from "./api.ts";
import type { RunConfigInput } from "./config.ts";
import { doctor, formatDoctor } from "./doctor.ts";
import { UserError } from "./errors.ts";
import { liveView } from "./live.ts";

const say = (line: string) => process.stderr.write(`${line}\n`);

function integer(value: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError("not an integer");
  return Number(value);
}

function number(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || Number.isNaN(n)) throw new InvalidArgumentError("not a number");
  return n;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function program(): Command {
  const cli = new Command("dsassist")
    .description("DSAssist: many tiny, recorded experiments on a table.")
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) })
    .showHelpAfterError(false);

  cli
    .command("run")
    .description("run plan -> code -> execute -> evaluate -> reflect cycles on DATA")
    .argument("<data>", "CSV, TSV or Parquet table")
    .requiredOption("-t, --target <column>", "column to predict")
    .option("-q, --question <text>", "what you want to know", "")
    .option("--budget <duration>", "wall-time budget: 90s, 5m, 1h (default: the config's, else 5m)")
    .option("--max-steps <n>", "most steps to run", integer)
    .option(
      "--cell-timeout <duration>",
      "wall time one cell may take (default 10m; the budget also bounds it)",
    )
    .option("--seed <n>", "random seed: the same seed gives the same run", integer)
    .option("-o, --out <dir>", "run folder to create", "runs/latest")
    .option("--overwrite", "replace a non-empty run folder")
    .option("--group <column>", "column whose rows must share a fold")
    .option("--time <column>", "column that orders the rows in time")
    .option("--keep <column>", "keep a column the guard suspects (repeatable)", collect)
    .option("--metric <name>", "roc_auc, accuracy, log_loss, rmse, mae, r2, ...")
    .option("--folds <n>", "cross-validation folds", integer)
    .option("--explore-share <share>", "share of steps for Bayesian parameter sampling", number)
    .option("--parallel <n>", "branches of the experiment tree run at once", integer)
    .option("--cores <n>", "cores per kernel (default: this machine's / --parallel)", integer)
    .option("--config <file>", "dsassist.toml (default: ./dsassist.toml when present)")
    .option("--templates <dir>", "a folder of extra template files (repeatable)", collect)
    .option("--python <path>", "kernel interpreter to use instead of the managed environment")
    .addOption(new Option("--sandbox <backend>", "where kernels run").choices(["local"]))
    .addOption(
      new Option("--isolation <mode>", "auto (bubblewrap if present), strict or none").choices([
        "auto",
        "strict",
        "none",
      ]),
    )
    .action(async (data: string, o: Record<string, unknown>) => {
      const flags: RunConfigInput = {
        data,
        target: o.target as string,
        question: o.question as string,
        budgetS: o.budget as string | undefined,
        maxSteps: o.maxSteps as number | undefined,
        cellTimeoutS: o.cellTimeout as string | undefined,
        seed: o.seed as number | undefined,
        out: o.out as string,
        overwrite: Boolean(o.overwrite),
        groupColumn: o.group as string | undefined,
        timeColumn: o.time as string | undefined,
        keep: o.keep as string[] | undefined,
        metric: o.metric as string | undefined,
        folds: o.folds as number | undefined,
        exploreShare: o.exploreShare as number | undefined,
        parallel: o.parallel as number | undefined,
        cores: o.cores as number | undefined,
        configFile: o.config as string | undefined,
        templates: o.templates as string[] | undefined,
        python: o.python as string | undefined,
        sandbox: o.sandbox as "local" | undefined,
        isolation: o.isolation as "auto" | "strict" | "none" | undefined,
      };
      const title = `DSAssist ${data} → ${o.out}  (target "${o.target}")`;
      await runWithView((hooks) => api.run(flags, hooks), title);
    });

  cli
    .command("resume")
    .description("continue a run that was stopped at any point")
    .argument("<dir>", "the run folder")
    .action(async (dir: string) => {
      await runWithView((hooks) => api.resume(dir, hooks), `DSAssist resuming ${dir}`);
    });

  cli
    .command("predict")
    .description("apply a run's final model to new rows (the input's rows and order are kept)")
    .argument("<dir>", "the run folder")
    .argument("<data>", "CSV, TSV or Parquet table")
    .requiredOption("-o, --output <file>", "where to write the predictions (.csv or .parquet)")
    .action(async (dir: string, data: string, o: { output: string }) => {
      const rows = await api.predict(dir, data, o.output);
      say(`${rows} predictions written to ${o.output}`);
    });

  cli
    .command("doctor")
    .description("what this machine offers DSAssist, with a fix for what is missing")
    .option("--json", "machine-readable output")
    .action(async (o: { json?: boolean }) => {
      const report = await doctor();
      process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctor(report));
    });
  return cli;
}

/** A run with its live view; Ctrl-C stops it (a resume continues it) with exit code 130. */
async function runWithView(start: (hooks: api.RunHooks) => Promise<api.RunResult>, title: string) {
  const abort = new AbortController();
  const interrupt = () => {
    say("interrupted: finishing the report (dsassist resume continues the run)");
    abort.abort();
  };
  process.once("SIGINT", interrupt);
  try {
    const result = await start({
      onStep: liveView(title, say, process.stderr.isTTY === true),
      onInfo: say,
      signal: abort.signal,
    });
    const best = result.best_score === null ? "no model" : `${result.metric} ${result.best_score.toFixed(4)}`;
    say(
      `${result.status}: ${result.stop_reason || "done"}; best ${best} (step ${result.best_step ?? "-"}), ${result.steps} steps in ${result.elapsed_s}s`,
    );
    say(`report: ${result.run_dir}/report.md`);
    if (abort.signal.aborted) process.exitCode = 130;
    else if (result.status !== "finished") process.exitCode = 1;
  } finally {
    process.removeListener("SIGINT", interrupt);
  }
}

/** Run the command line; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : 2; // commander already printed its one line
    }
    if (error instanceof UserError || error instanceof SandboxError) {
      say(`error: ${error.message}`);
      return 2;
    }
    throw error;
  }
}

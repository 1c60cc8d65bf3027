/**
 * `dsassist predict`: a run's final model applied to new rows. The model was written by
 * untrusted code, so it is unpickled and applied inside a sandbox; only the table of
 * predictions comes back, and the input's rows and order are kept.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, extname, join, resolve } from "node:path";
import { createSandbox, kernelPython } from "@dsassist/sandboxes";
import { z } from "zod";
import { inspectTable } from "./data.ts";
import { UserError } from "./errors.ts";
import { pyLiteral } from "./templates/python.ts";

const ModelMeta = z.object({ task: z.string(), features: z.array(z.string()) });

const PREDICT_CELL = (model: string, data: string, out: string, features: string[], classify: boolean) => `
import cloudpickle, pandas as pd
from dsassist_kernel.toolkit import load_table
frame = load_table(${pyLiteral(data)})
missing = [c for c in ${pyLiteral(features)} if c not in frame.columns]
if missing:
    raise KeyError("lacks columns the model needs: " + ", ".join(missing))
with open(${pyLiteral(model)}, "rb") as f:
    model = cloudpickle.load(f)
X = frame[${pyLiteral(features)}]
out = frame.reset_index(drop=True).copy()
out["prediction"] = model.predict(X)
if ${pyLiteral(classify)}:
    proba = model.predict_proba(X)
    for i, label in enumerate(model.classes_):
        out[f"proba_{label}"] = proba[:, i]
target = ${pyLiteral(out)}
out.to_parquet(target, index=False) if target.endswith((".parquet", ".pq")) else out.to_csv(target, index=False)
print(len(out))
`;

/** Write predictions for `data` to `output`; returns the number of rows. */
export async function predict(runDir: string, data: string, output: string): Promise<number> {
  const run = resolve(runDir);
  const model = join(run, "model.pkl");
  const metaPath = join(run, "model.json");
  if (!existsSync(run)) throw new UserError(`no run folder at ${runDir}`);
  if (!existsSync(model) || !existsSync(metaPath)) {
    throw new UserError(`no final model in ${runDir}: the run did not reach its final refit`);
  }
  const meta = ModelMeta.parse(JSON.parse(await readFile(metaPath, "utf8")));
  const env = await kernelPython();
  const input = resolve(data);
  await inspectTable(env, input, null); // a bad file is one line, before any kernel starts
  const scratch = await mkdtemp(join(tmpdir(), "dsassist-predict-"));
  const work = join(scratch, "work");
  const ext =
    extname(output).toLowerCase() === ".parquet" || extname(output).toLowerCase() === ".pq"
      ? ".parquet"
      : ".csv";
  const written = join(work, `predictions${ext}`);
  const sandbox = await createSandbox({
    workdir: work,
    checkpoints: join(scratch, "checkpoints"),
    python: env.python,
    runtime: env.runtime,
    readOnly: [model, input],
    pool: 0,
  });
  try {
    const classify = meta.task !== "regression";
    const result = await sandbox.execute(PREDICT_CELL(model, input, written, meta.features, classify), {
      timeoutS: 3600,
    });
    if (!result.ok) {
      const error = result.error!;
      const why =
        error.name === "KeyError"
          ? `${basename(data)} ${error.value.replace(/^['"]|['"]$/g, "")}`
          : `${error.name}: ${error.value}`;
      throw new UserError(`the model failed to predict: ${why}`);
    }
    const destination = resolve(output);
    await mkdir(dirname(destination), { recursive: true });
    // next to the destination first, so a failure leaves no half-written file
    const tmp = join(dirname(destination), `.${basename(destination)}.tmp`);
    await copyFile(written, tmp);
    await rename(tmp, destination);
    return Number(result.stdout.trim().split("\n").at(-1));
  } finally {
    await sandbox.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Records steps in a loop until killed: the crash test kills it with SIGKILL mid-transaction.
 * Each step carries many large attempts, so most of the time is spent inside a transaction.
 * Prints `begin N` before and `done N` after each step's transaction.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RunStore } from "../../../core/src/provenance/kuzu.ts";
import { ATTEMPTS_PER_STEP, attempts, runMeta, STDOUT_BYTES, step } from "./steps.ts";

async function main(runDir: string): Promise<void> {
  await mkdir(join(runDir, "plots"), { recursive: true });
  const store = await RunStore.open(runDir);
  await store.recordRun(runMeta());
  for (let id = 0; ; id++) {
    await writeFile(join(runDir, "plots", `step-${id}.png`), `png ${id}`);
    const tries = Array.from({ length: ATTEMPTS_PER_STEP / 2 }, () => attempts(id, STDOUT_BYTES)).flat();
    process.stdout.write(`begin ${id}\n`);
    await store.recordStep(
      step(id, id > 0 ? id - 1 : null, 0.7 + id / 1000, `lesson ${id}`),
      tries,
      new Date().toISOString(),
      [{ path: `plots/step-${id}.png`, mediaType: "image/png" }],
    );
    process.stdout.write(`done ${id}\n`);
  }
}

await main(process.argv[2]!);

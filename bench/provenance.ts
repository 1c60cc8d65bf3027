/**
 * The cost of recording a step in a run's Kùzu database, as the loop pays it: `recordStep`
 * (the step, its two attempts with code, a lesson and a plot, in one transaction), over 200
 * steps of one run; then reading them all back as `dsassist resume` does.
 *
 *     npx tsx bench/provenance.ts [steps]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { RunStore } from "../core/src/provenance/kuzu.ts";
import { attempts, runMeta, step } from "../test/core/provenance/steps.ts";

const STDOUT_BYTES = 2_000;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(count: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "dsassist-bench-prov-"));
  try {
    await mkdir(join(dir, "plots"));
    const store = await RunStore.open(dir);
    await store.recordRun(runMeta());
    const costs: number[] = [];
    for (let id = 0; id < count; id++) {
      writeFileSync(join(dir, "plots", `step-${id}.png`), `png ${id}`.repeat(1_000));
      const parent = id === 0 ? null : Math.floor(id / 2);
      const started = performance.now();
      await store.recordStep(
        step(id, parent, 0.7 + id / 10_000, `lesson ${id}`),
        attempts(id, STDOUT_BYTES),
        "t",
        [{ path: `plots/step-${id}.png`, mediaType: "image/png" }],
      );
      costs.push(performance.now() - started);
    }
    const started = performance.now();
    const read = await store.steps();
    const readMs = performance.now() - started;
    await store.close();
    const sorted = [...costs].sort((a, b) => a - b);
    const [one, five] = loadavg();
    console.log(`load average ${one?.toFixed(2)} (1 min), ${five?.toFixed(2)} (5 min)`);
    console.log(`recordStep over ${count} steps (2 attempts, ${STDOUT_BYTES} B stdout each, lesson, plot):`);
    console.log(
      `  median ${quantile(sorted, 0.5).toFixed(2)} ms, p90 ${quantile(sorted, 0.9).toFixed(2)} ms, ` +
        `max ${sorted.at(-1)!.toFixed(2)} ms, first ${costs[0]!.toFixed(2)} ms`,
    );
    console.log(`steps(): ${read.length} steps read back in ${readMs.toFixed(1)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main(Number(process.argv[2] ?? 200));

/**
 * The local sandbox's costs, printed (no assertions):
 * 1. a trivial cell's round trip through Sandbox.execute, median and p90 over N calls, under
 *    bubblewrap and without it (both alive at once, called in alternation so that drift in
 *    the machine's load falls on both);
 * 2. a kernel ready cold (a new sandbox's start) against one taken warm from the pool;
 * 3. a checkpoint of a ~100 MB frame, restoring it into a fresh kernel against replaying its cells.
 *
 * Run: npx tsx bench/sandbox.ts [roundtrips=300] [repeats=3]   (DSASSIST_PYTHON picks the interpreter)
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { bubblewrapWorks, createSandbox, type LocalSandbox } from "../sandboxes/src/index.ts";

const ROUNDTRIPS = Number(process.argv[2] ?? 300);
const REPEATS = Number(process.argv[3] ?? 3);
const base = mkdtempSync("/var/tmp/dsassist-bench-");
chmodSync(base, 0o755); // the kernel user must reach its work folder
let runs = 0;
const workdir = () => join(base, `run-${runs++}`, "work");

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
const ms = (s: number) => `${(s * 1000).toFixed(2)} ms`;
async function seconds(body: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await body();
  return (performance.now() - start) / 1000;
}

async function roundTrips(): Promise<void> {
  const modes = bubblewrapWorks() ? (["auto", "none"] as const) : (["none"] as const);
  const sandboxes = await Promise.all(
    modes.map((isolation) => createSandbox({ workdir: workdir(), isolation, pool: 0 })),
  );
  const times: number[][] = modes.map(() => []);
  for (let i = 0; i < ROUNDTRIPS + 20; i++) {
    for (const [m, sb] of sandboxes.entries()) {
      const s = await seconds(() => sb.execute("x = 1"));
      if (i >= 20) times[m]?.push(s); // after a warm-up
    }
  }
  console.log(`1. trivial cell round trip through Sandbox.execute (${ROUNDTRIPS} calls each)`);
  for (const [m, mode] of modes.entries()) {
    const t = times[m] as number[];
    const label = mode === "auto" ? "bubblewrap" : "no isolation";
    console.log(`   ${label.padEnd(13)} median ${ms(quantile(t, 0.5))}   p90 ${ms(quantile(t, 0.9))}`);
  }
  await Promise.all(sandboxes.map((sb) => sb.close()));
}

async function readiness(): Promise<void> {
  const cold: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    let sb: LocalSandbox | undefined;
    cold.push(await seconds(async () => (sb = await createSandbox({ workdir: workdir(), pool: 0 }))));
    await sb?.close();
  }
  const sb = await createSandbox({ workdir: workdir(), pool: 1 });
  const warm: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    await sb.settle();
    warm.push(await seconds(() => sb.restart()));
  }
  await sb.close();
  console.log(`2. kernel ready (${REPEATS} repetitions, medians)`);
  console.log(`   cold start     ${ms(quantile(cold, 0.5))}`);
  console.log(`   from the pool  ${ms(quantile(warm, 0.5))}`);
}

async function checkpoints(): Promise<void> {
  const cells = [
    "import numpy as np, pandas as pd",
    "frame = pd.DataFrame(np.random.default_rng(0).random((1_250_000, 10)))", // 100 MB of float64
  ];
  const sb = await createSandbox({ workdir: workdir(), pool: 1, preload: ["numpy", "pandas"] });
  for (const cell of cells) await sb.execute(cell);
  const checkpoint = await sb.checkpoint("frame", cells);
  const again = await sb.checkpoint("frame-again", cells);
  const restore: number[] = [];
  const replay: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    await sb.settle();
    restore.push(await seconds(() => sb.branch(checkpoint)));
    await sb.settle();
    replay.push(
      await seconds(async () => {
        await sb.restart();
        for (const cell of cells) await sb.execute(cell);
      }),
    );
  }
  await sb.close();
  console.log(`3. a ${(checkpoint.newBytes / 1e6).toFixed(0)} MB frame (${REPEATS} repetitions, medians)`);
  console.log(
    `   checkpoint write ${ms(checkpoint.durationS)}; unchanged again ${ms(again.durationS)} (${again.newBytes} new bytes)`,
  );
  console.log(
    `   restore into a pooled kernel ${ms(quantile(restore, 0.5))}   replay the cells ${ms(quantile(replay, 0.5))}`,
  );
}

try {
  await roundTrips();
  await readiness();
  await checkpoints();
} finally {
  rmSync(base, { recursive: true, force: true });
}

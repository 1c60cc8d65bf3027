/**
 * The kernels of one run: one per parallel branch, sharing the run's work folder,
 * checkpoint store and kernel user, so that any of them can continue from any step.
 */
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { createSandbox, type KernelEnv, nextKernelUid, type Sandbox } from "@dsassist/sandboxes";
import type { RunConfig } from "./config.ts";

/** What the tabular cells import: pooled kernels import it while they wait. */
const TABULAR_MODULES = [
  "numpy",
  "pandas",
  "sklearn.ensemble",
  "lightgbm",
  "matplotlib.pyplot",
  "dsassist_kernel.toolkit",
];

export async function openSandboxes(
  cfg: RunConfig,
  env: KernelEnv,
  out: string,
  data: string,
): Promise<Sandbox[]> {
  const cores = cfg.cores ?? Math.max(1, Math.floor(availableParallelism() / cfg.parallel));
  const shared = {
    // the kernel writes only to work/: the database and the report stay out of its reach
    workdir: join(out, "work"),
    checkpoints: join(out, "work", "checkpoints"),
    log: join(out, "kernel.log"),
    python: env.python,
    runtime: env.runtime,
    readOnly: [data],
    preload: TABULAR_MODULES,
    pool: 1,
    uid: nextKernelUid(),
    isolation: cfg.isolation,
    limits: {
      memoryMb: cfg.memoryMb,
      cpuS: cfg.cpuS,
      processes: cfg.processes,
      fileMb: cfg.fileMb,
      outputKb: cfg.outputKb,
      cores,
    },
  };
  const opened: Sandbox[] = [];
  try {
    for (let i = 0; i < cfg.parallel; i++) opened.push(await createSandbox(shared));
  } catch (error) {
    await Promise.all(opened.map((s) => s.close()));
    throw error;
  }
  return opened;
}

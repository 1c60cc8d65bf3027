/**
 * What the loop records about a run, and reads back to resume it: the contract of every
 * provenance backend (Kùzu today, in `kuzu.ts`).
 */
import { z } from "zod";
import { UserError } from "../errors.ts";
import { type Attempt, type Execution, Json, RunOptions, type StepSummary, Task } from "../messages.ts";

/** The table a run learns from, as the run found it. */
export const DatasetMeta = z.object({
  path: z.string(),
  sha256: z.string(),
  bytes: z.number().int().nonnegative(),
  rows: z.number().int().nonnegative(),
  columns: z.number().int().nonnegative(),
  mediaType: z.string().default("text/csv"),
});
export type DatasetMeta = z.infer<typeof DatasetMeta>;

/** What a run was asked to do, recorded once when it starts. */
export const RunMeta = z.object({
  id: z.string().min(1),
  dataset: DatasetMeta,
  target: z.string().nullable(),
  task: Task.nullable(),
  metric: z.string(),
  question: z.string().default(""),
  seed: z.number().int(),
  /** wall seconds, steps, dollars: null where unbounded */
  budget: z.record(z.string(), z.number().nullable()).default({}),
  options: RunOptions,
  /** the run's whole configuration, so a resume goes on with the same settings */
  config: z.record(z.string(), Json).default({}),
  startedAt: z.string(),
});
export type RunMeta = z.infer<typeof RunMeta>;

/** How a run ended: a status and whatever figures the caller keeps (best score, counts, answer). */
export const RunResult = z.object({ status: z.string() }).catchall(Json);
export type RunResult = z.infer<typeof RunResult>;

/** The recorded meta, with where the run stands. */
export const RecordedRun = RunMeta.extend({
  status: z.string(),
  result: RunResult.nullable(),
});
export type RecordedRun = z.infer<typeof RecordedRun>;

/** A file a step left, relative to the run folder. */
export interface ArtifactRef {
  path: string;
  mediaType: string;
}

/** What `dsassist resume` rebuilds the loop from: a step and its last attempt. */
export interface RecordedStep {
  summary: StepSummary;
  code: string;
  execution: Execution;
}

export interface ProvenanceStore {
  recordRun(meta: RunMeta): Promise<void>;
  /**
   * The step, every attempt (execution and code), its lesson and artifacts, in one
   * transaction: after a crash a step is either whole or absent. Returns false, changing
   * nothing, when the step id is already recorded (a redelivered step).
   */
  recordStep(
    step: StepSummary,
    attempts: Attempt[],
    startedAt: string,
    artifacts?: ArtifactRef[],
  ): Promise<boolean>;
  recordResult(result: RunResult): Promise<void>;
  /** every recorded step in id order */
  steps(): Promise<RecordedStep[]>;
  /** null before `recordRun` */
  run(): Promise<RecordedRun | null>;
  close(): Promise<void>;
}

/** The store cannot do what was asked (in use, newer schema, no run, unknown parent): one line. */
/** A run folder without a readable provenance database, or one another process holds: the user can fix it. */
export class ProvenanceError extends UserError {
  override name = "ProvenanceError";
}

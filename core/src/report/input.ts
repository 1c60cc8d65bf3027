/**
 * What the report is written from: recorded steps and the records their cells published.
 * Nothing here is recomputed; the report formats these numbers and no others.
 */
import { z } from "zod";
import { StepSummary, Task } from "../messages.ts";
import { DatasetMeta } from "../provenance/store.ts";

/** The kernel's records are untrusted; an empty record (a step that never ran) means absent. */
function record<T extends z.ZodType>(schema: T) {
  return z.preprocess(
    (v) => (v && typeof v === "object" && Object.keys(v).length === 0 ? null : v),
    schema.nullable(),
  );
}

/** The `profile` record (toolkit.profile_data). */
export const ProfileRecord = z.object({
  rows: z.number().int(),
  columns: z.record(
    z.string(),
    z.object({ kind: z.string(), dtype: z.string(), missing: z.number(), unique: z.number().int() }),
  ),
  /** column -> the evidence that got it excluded ("leak: alone it predicts ...") */
  suspicious: z.record(z.string(), z.string()).default({}),
  target: z.union([
    z.object({ classes: z.record(z.string(), z.number().int()) }),
    z.object({ mean: z.number(), std: z.number(), min: z.number(), max: z.number(), skew: z.number() }),
  ]),
});
export type ProfileRecord = z.infer<typeof ProfileRecord>;

/** The `validation` record: how every comparison was cross-validated. */
export const ValidationRecord = z.object({
  scheme: z.string(),
  n_splits: z.number().int(),
  column: z.string().nullable().default(null),
  why: z.string(),
});
export type ValidationRecord = z.infer<typeof ValidationRecord>;

/** The final step's `drivers` record: permutation importance of each raw column. */
export const DriversRecord = z.object({
  columns: z.array(z.object({ column: z.string(), importance: z.number(), effect: z.string() })),
});
export type DriversRecord = z.infer<typeof DriversRecord>;

export const ReportInput = z.object({
  question: z.string().default(""),
  answer: z.string(),
  dataset: DatasetMeta.pick({ path: true, sha256: true }),
  target: z.string().nullable(),
  task: Task.nullable(),
  metric: z.string(),
  profile: record(ProfileRecord),
  validation: record(ValidationRecord),
  steps: z.array(StepSummary),
  bestStep: z.number().int().nullable(),
  /** the winning path: the steps `notebook.ipynb` replays */
  path: z.array(z.object({ step: StepSummary, code: z.string() })).default([]),
  drivers: record(DriversRecord),
  /** image outputs, relative to the run folder */
  plots: z.array(z.object({ title: z.string(), path: z.string() })).default([]),
  result: z.object({ status: z.string(), elapsedS: z.number() }),
  stopReason: z.string(),
});
export type ReportInput = z.infer<typeof ReportInput>;
export type ReportInputData = z.input<typeof ReportInput>;

/** What the offline answer is built from. */
export type AnswerFacts = Pick<ReportInput, "steps" | "bestStep" | "target" | "drivers" | "stopReason">;

/**
 * What the templates know about a run: its data profile, the pipeline spec each step was
 * judged with, the best step of each model family.
 */
import { z } from "zod";
import { gainOver, type Json, type RunView, type StepSummary } from "../messages.ts";

/** The run's `profile` record is not what the kernel's profile_data publishes. */
export class ProfileError extends Error {
  override name = "ProfileError";
}

const ColumnInfo = z.object({
  kind: z.string(),
  missing: z.number().default(0),
  unique: z.number().default(0),
  skew: z.number().nullable().default(0),
});
export type ColumnInfo = z.infer<typeof ColumnInfo>;

/** The parts of the kernel's profile record that conditions read; before profiling, all empty. */
const Profile = z.object({
  rows: z.number().default(0),
  columns: z.record(z.string(), ColumnInfo).default({}),
  suspicious: z.record(z.string(), z.string()).default({}),
  target: z
    .object({ skew: z.number().nullable().optional(), min: z.number().nullable().optional() })
    .default({}),
  time_column: z.string().nullable().default(null),
  group_column: z.string().nullable().default(null),
});
export type Profile = z.infer<typeof Profile>;

export function profileOf(run: RunView): Profile {
  const parsed = Profile.safeParse(run.profile);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new ProfileError(
    `the run's profile record is malformed at ${issue?.path.join(".")}: ${issue?.message}`,
  );
}

/** The columns the guard step kept (not suspicious), in table order, with what the profile says. */
export function usableColumns(profile: Profile): [string, ColumnInfo][] {
  return Object.entries(profile.columns).filter(([name]) => !(name in profile.suspicious));
}

/** Pipeline specs are JSON objects: `model`, `params` and feature switches. */
export type Spec = { [key: string]: Json };

export const isObject = (v: Json | undefined): v is Spec =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The pipeline spec a step was judged with: the changes along its chain of parents, oldest first. */
export function specOf(run: RunView, stepId: number | null): Spec {
  return specAlong(run.steps, stepId);
}

/** The pipeline spec a step was judged with: the changes along its chain of parents. */
export function specAlong(steps: readonly StepSummary[], stepId: number | null): Spec {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const chain: StepSummary[] = [];
  for (let node = stepId === null ? undefined : byId.get(stepId); node !== undefined; ) {
    chain.push(node);
    node = node.parent === null ? undefined : byId.get(node.parent);
  }
  const spec: Spec = {};
  for (const step of chain.reverse()) {
    const change = step.params.change;
    if (isObject(change)) Object.assign(spec, change);
  }
  return spec;
}

/** The model of the best step's pipeline, if any. */
export function bestModel(run: RunView): string | undefined {
  const model = specOf(run, run.bestStep).model;
  return typeof model === "string" ? model : undefined;
}

/** A step of that template finished well: done (set-up steps) or kept (judged ones). */
export function completed(run: RunView, templateId: string): boolean {
  return run.steps.some(
    (s) => s.templateId === templateId && (s.verdict === "done" || s.verdict === "accepted"),
  );
}

const JUDGED_VERDICTS = new Set(["accepted", "rejected"]);

/** A real model has been judged (kept or not). */
export function modelTried(run: RunView): boolean {
  return run.steps.some((s) => s.kind === "model" && JUDGED_VERDICTS.has(s.verdict));
}

/** The best judged (or only kept) step of each model family, without dummy and ensemble. */
export function bestPerModel(run: RunView, keptOnly = false): number[] {
  const best = new Map<string, StepSummary>();
  for (const s of run.steps) {
    if (s.metrics === null || !(keptOnly ? s.verdict === "accepted" : JUDGED_VERDICTS.has(s.verdict)))
      continue;
    const model = specOf(run, s.id).model; // the spec the step was judged with, kept or not
    if (typeof model !== "string" || model === "dummy" || model === "ensemble") continue;
    const current = best.get(model)?.metrics;
    if (!current || gainOver(s.metrics, current) > 0) best.set(model, s);
  }
  return [...best.values()].map((s) => s.id);
}

/** Step ids, best score first (steps without metrics last). */
export function ranked(run: RunView, stepIds: number[]): number[] {
  const score = (id: number) => {
    const m = run.steps.find((s) => s.id === id)?.metrics;
    return m ? m.mean * (m.higherIsBetter ? 1 : -1) : Number.NEGATIVE_INFINITY;
  };
  return [...stepIds].sort((a, b) => score(b) - score(a));
}

/**
 * The best kept step of a single model family: where parameter search builds on. Kept,
 * because only a kept step's kernel state holds the spec it was judged with.
 */
export function singleBest(run: RunView): number | null {
  return ranked(run, bestPerModel(run, true))[0] ?? null;
}

/** The latest step that is done (an unjudged one): where a set-up step builds on. */
export function lastDone(run: RunView): number | null {
  return run.steps.filter((s) => s.verdict === "done").at(-1)?.id ?? null;
}

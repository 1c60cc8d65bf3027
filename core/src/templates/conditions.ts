/**
 * The declarative "applies when" of a template file: conditions over the run view and the
 * data profile, all of which must hold. prompts/README.md documents the vocabulary.
 */
import { z } from "zod";
import { type RunView, Task } from "../messages.ts";
import { bestModel, completed, modelTried, type Profile, usableColumns } from "./run.ts";
import type { Template } from "./types.ts";

const oneOrMany = z
  .union([z.string(), z.array(z.string()).min(1)])
  .transform((v) => (typeof v === "string" ? [v] : v));

/** Usable columns (not suspicious) that the template works on; it applies when one matches. */
const ColumnSelector = z.strictObject({
  kind: oneOrMany,
  missing_above: z.number().optional(),
  unique_above: z.number().optional(),
  abs_skew_above: z.number().optional(),
});

const TargetCondition = z.strictObject({
  skew_above: z.number().optional(),
  min_at_least: z.number().optional(),
});

export const Condition = z.strictObject({
  /** the run has a target (true) or is an open question (false); a table: its profile too */
  target: z.union([z.boolean(), TargetCondition]).optional(),
  task: z.array(Task).min(1).optional(),
  /** a step of each named template is done (set-up) or kept (judged) */
  after: oneOrMany.optional(),
  /** a model family has been judged */
  model_tried: z.boolean().optional(),
  /** every model template that applies has been tried */
  models_compared: z.literal(true).optional(),
  best_model_not: z.array(z.string()).min(1).optional(),
  rows_at_most: z.number().optional(),
  rows_at_least: z.number().optional(),
  /** usable feature columns (numeric, categorical, datetime, text) */
  columns_at_least: z.number().optional(),
  /** seconds left in the budget */
  time_left_below: z.number().optional(),
  columns: ColumnSelector.optional(),
});
export type Condition = z.infer<typeof Condition>;

/** What conditions are checked against. */
export interface Facts {
  run: RunView;
  profile: Profile;
  /** every loaded template: `models_compared` asks the model templates */
  library: readonly Template[];
}

const FEATURE_KINDS = new Set(["numeric", "categorical", "datetime", "text"]);

/** The columns a condition binds (`$columns`), or null when it does not hold. */
export function holds(condition: Condition, facts: Facts): string[] | null {
  const { run, profile } = facts;
  const c = condition;
  const checks: (() => boolean)[] = [
    () => c.target === undefined || targetHolds(c.target, facts),
    () => c.task === undefined || (run.task !== null && c.task.includes(run.task)),
    () => c.after === undefined || c.after.every((id) => completed(run, id)),
    () => c.model_tried === undefined || modelTried(run) === c.model_tried,
    () => c.best_model_not === undefined || !c.best_model_not.includes(bestModel(run) ?? ""),
    () => c.rows_at_most === undefined || profile.rows <= c.rows_at_most,
    () => c.rows_at_least === undefined || profile.rows >= c.rows_at_least,
    () => c.columns_at_least === undefined || featureCount(profile) >= c.columns_at_least,
    () => c.time_left_below === undefined || run.timeLeftS < c.time_left_below,
    () => c.models_compared === undefined || untriedModels(facts).length === 0,
  ];
  if (!checks.every((check) => check())) return null;
  if (c.columns === undefined) return [];
  const chosen = selectColumns(c.columns, profile);
  return chosen.length > 0 ? chosen : null;
}

function targetHolds(target: boolean | z.infer<typeof TargetCondition>, facts: Facts): boolean {
  const hasTarget = facts.run.options.target !== null;
  if (typeof target === "boolean") return hasTarget === target;
  const { skew, min } = facts.profile.target;
  const skewOk = target.skew_above === undefined || (skew != null && skew > target.skew_above);
  const minOk = target.min_at_least === undefined || (min != null && min >= target.min_at_least);
  return hasTarget && skewOk && minOk;
}

function selectColumns(selector: z.infer<typeof ColumnSelector>, profile: Profile): string[] {
  return usableColumns(profile)
    .filter(
      ([, info]) =>
        selector.kind.includes(info.kind) &&
        (selector.missing_above === undefined || info.missing > selector.missing_above) &&
        (selector.unique_above === undefined || info.unique > selector.unique_above) &&
        (selector.abs_skew_above === undefined || Math.abs(info.skew ?? 0) > selector.abs_skew_above),
    )
    .map(([name]) => name);
}

function featureCount(profile: Profile): number {
  return usableColumns(profile).filter(([, info]) => FEATURE_KINDS.has(info.kind)).length;
}

/** Model templates that apply and have no finished step yet. */
function untriedModels(facts: Facts): Template[] {
  const tried = new Set(facts.run.steps.map((s) => s.templateId));
  return facts.library.filter(
    (t) => t.kind === "model" && !tried.has(t.id) && t.options(facts.run).length > 0,
  );
}

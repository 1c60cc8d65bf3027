/**
 * The typed messages that the controller and the agents exchange over the bus.
 *
 * Every agent is `handle(request) -> reply`; each pair of schemas below is one agent's
 * contract, so any transport (in-process, NATS) can validate what crosses it.
 */
import { Execution, KernelState } from "@dsassist/sandboxes";
import { z } from "zod";

export { ErrorInfo, Execution, KernelState, Output, records, Variable } from "@dsassist/sandboxes";

export const Verdict = z.enum([
  "accepted", // a judged hypothesis that helped: the best pipeline moves to it
  "rejected", // a judged hypothesis that did not help: the parent stays best
  "done", // a step that is not judged (setup, profile, validation, final refit)
  "recheck", // a near-tie: score candidate and parent again on new folds, then decide
  "retry", // the cell failed and a targeted fix is worth trying
  "failed", // the cell failed and no more fixes are allowed
]);
export type Verdict = z.infer<typeof Verdict>;

export const Task = z.enum(["binary", "multiclass", "regression"]);
export type Task = z.infer<typeof Task>;

/** Cross-validated scores of one pipeline, as published by the kernel (never scraped). */
export const Metrics = z.object({
  metric: z.string(),
  higherIsBetter: z.boolean(),
  folds: z.array(z.number()),
  mean: z.number(),
  std: z.number(),
  secondary: z.record(z.string(), z.number()).default({}),
  /** the folds' fit times summed: what a sequential pass costs */
  fitTimeS: z.number().default(0),
  /** folds that ran at a time */
  foldJobs: z.number().int().min(1).default(1),
});
export type Metrics = z.infer<typeof Metrics>;

/** The kernel's `metrics` record (snake_case, as the Python toolkit writes it). */
export const MetricsRecord = z
  .object({
    metric: z.string(),
    higher_is_better: z.boolean(),
    folds: z.array(z.number()),
    mean: z.number(),
    std: z.number(),
    secondary: z.record(z.string(), z.number()).default({}),
    fit_time_s: z.number().default(0),
    fold_jobs: z.number().int().min(1).default(1),
  })
  .transform(
    (r): Metrics => ({
      metric: r.metric,
      higherIsBetter: r.higher_is_better,
      folds: r.folds,
      mean: r.mean,
      std: r.std,
      secondary: r.secondary,
      fitTimeS: r.fit_time_s,
      foldJobs: r.fold_jobs,
    }),
  );

/** Improvement of `a` over `b`, positive when better whatever the metric's direction. */
export function gainOver(a: Metrics, b: Metrics): number {
  const diff = a.mean - b.mean;
  return a.higherIsBetter ? diff : -diff;
}

/** A near-tie scored again: candidate and parent on the same freshly shuffled folds. */
export const Recheck = z.object({
  candidate: z.array(z.number()),
  parent: z.array(z.number()),
  /** set when no new folds could be drawn */
  why: z.string().default(""),
});
export type Recheck = z.infer<typeof Recheck>;

/** JSON values: template parameters travel as JSON and become Python literals in cells. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export const Json: z.ZodType<Json> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(Json), z.record(z.string(), Json)]),
);
export const Params = z.record(z.string(), Json);
export type Params = z.infer<typeof Params>;

/** One minimal subtask: a hypothesis to test with one template. */
export const Subtask = z.object({
  templateId: z.string(),
  kind: z.string(),
  hypothesis: z.string(),
  params: Params.default({}),
  /** compared with its parent on the same folds, kept only if it helps */
  judged: z.boolean().default(true),
  parent: z.number().int().nullable().default(null),
});
export type Subtask = z.infer<typeof Subtask>;

/** What the planner and the report need to know about a finished step. */
export const StepSummary = z.object({
  id: z.number().int(),
  parent: z.number().int().nullable(),
  templateId: z.string(),
  kind: z.string(),
  hypothesis: z.string(),
  params: Params.default({}),
  verdict: Verdict,
  metrics: Metrics.nullable().default(null),
  gain: z.number().nullable().default(null),
  durationS: z.number().default(0),
  attempts: z.number().int().default(1),
  error: z.string().nullable().default(null),
  lesson: z.string().default(""),
});
export type StepSummary = z.infer<typeof StepSummary>;

export function stepLine(s: StepSummary): string {
  const score = s.metrics ? ` ${s.metrics.metric} ${s.metrics.mean.toFixed(4)}` : "";
  const lesson = s.lesson ? `: ${s.lesson}` : "";
  return `step ${s.id} [${s.verdict}]${score} ${s.hypothesis}${lesson}`;
}

/** How one template fared on earlier runs on similar data. */
export const Prior = z.object({
  tried: z.number().int(),
  kept: z.number().int(),
  meanGain: z.number().nullable().default(null),
  runs: z.number().int().default(0),
});
export type Prior = z.infer<typeof Prior>;

/** The kept share, shrunk towards one half when there is little evidence. */
export const priorRate = (p: Prior) => (p.kept + 1) / (p.tried + 2);

/** The user's choices for a run, as the planner sees them. */
export const RunOptions = z.object({
  path: z.string(),
  target: z.string().nullable(),
  question: z.string().default(""),
  seed: z.number().int().default(0),
  task: Task.nullable(),
  metric: z.string(),
  groupColumn: z.string().nullable().default(null),
  timeColumn: z.string().nullable().default(null),
  /** columns the user keeps whatever the guard suspects (`--keep`) */
  keep: z.array(z.string()).default([]),
  folds: z.number().int().min(2).default(5),
  exploreShare: z.number().min(0).max(1).default(0.3),
});
export type RunOptions = z.infer<typeof RunOptions>;

/** The state of the run as the planner sees it. */
export const RunView = z.object({
  task: Task.nullable(),
  metric: z.string(),
  /** the kernel's `profile` record: columns, suspects, target, time and group columns */
  profile: z.record(z.string(), z.unknown()).default({}),
  steps: z.array(StepSummary).default([]),
  bestStep: z.number().int().nullable().default(null),
  timeLeftS: z.number(),
  stepsLeft: z.number().int(),
  options: RunOptions,
  /** template id -> earlier runs on similar data */
  priors: z.record(z.string(), Prior).default({}),
  /** started on parallel branches, not finished */
  running: z.array(Subtask).default([]),
});
export type RunView = z.infer<typeof RunView>;

/** The latest steps, one line each: what was tried and what came of it. */
export function history(view: RunView, limit = 12): string {
  const lines = view.steps.slice(-limit).map(stepLine);
  const skipped = view.steps.length - lines.length;
  return [...(skipped > 0 ? [`(${skipped} earlier steps not shown)`] : []), ...lines].join("\n");
}

/**
 * Seconds to keep for the final refit: it fits once on all rows and explains on two folds,
 * one after the other, about one sequential cross-validation of the best step, with a margin.
 * For folds that ran in turn, that is the step's time. For folds that ran two at a time it
 * is their summed fit time: the step's wall time was half of it, plus one-off costs (joblib
 * starting its workers: seconds) that the refit does not pay.
 */
export function refitReserveS(view: RunView): number {
  const best = view.steps.find((s) => s.id === view.bestStep);
  if (!best?.metrics) return 0;
  const sequential = best.metrics.foldJobs > 1 ? best.metrics.fitTimeS : best.durationS;
  return 1.5 * sequential + 5;
}

// ---- requests and replies, one pair per agent -------------------------------------------

export const PlanRequest = z.object({ run: RunView });
export type PlanRequest = z.infer<typeof PlanRequest>;

export const Plan = z.object({
  tasks: z.array(Subtask).default([]),
  done: z.boolean().default(false),
  /** nothing can start until a running step has finished */
  wait: z.boolean().default(false),
  reason: z.string().default(""),
});
export type Plan = z.infer<typeof Plan>;

export const CodeRequest = z.object({
  kind: z.literal("code"),
  task: Subtask,
  state: KernelState,
  stepId: z.number().int().nullable().default(null),
  /** the latest steps, one line each */
  history: z.string().default(""),
});
export type CodeRequest = z.infer<typeof CodeRequest>;

export const FixRequest = z.object({
  kind: z.literal("fix"),
  task: Subtask,
  code: z.string(),
  execution: Execution,
  feedback: z.string(),
  attempt: z.number().int(),
  state: KernelState,
  /** the step's earlier cells, to detect a looping fixer */
  tried: z.array(z.string()).default([]),
  stepId: z.number().int().nullable().default(null),
});
export type FixRequest = z.infer<typeof FixRequest>;

export const Cell = z.object({
  code: z.string(),
  /** for a fix: which repair was applied */
  rule: z.string().default(""),
  /** the coder has no fix to offer */
  gaveUp: z.boolean().default(false),
});
export type Cell = z.infer<typeof Cell>;

export const EvaluateRequest = z.object({
  kind: z.literal("evaluate"),
  task: Subtask,
  execution: Execution,
  code: z.string().default(""),
  stepId: z.number().int().nullable().default(null),
  parent: Metrics.nullable().default(null),
  attempt: z.number().int().default(0),
  maxAttempts: z.number().int().default(0),
  /** the budget allows scoring a near-tie again */
  canRecheck: z.boolean().default(false),
  recheck: Recheck.nullable().default(null),
});
export type EvaluateRequest = z.infer<typeof EvaluateRequest>;

export const Evaluation = z.object({
  verdict: Verdict,
  metrics: Metrics.nullable().default(null),
  gain: z.number().nullable().default(null),
  feedback: z.string().default(""),
});
export type Evaluation = z.infer<typeof Evaluation>;

/** The direct answer to the run's question, from the evidence the steps produced. */
export const AnswerRequest = z.object({
  kind: z.literal("answer"),
  question: z.string(),
  evidence: z.array(z.string()),
  /** the offline answer, built from the verdicts and the final model's drivers */
  summary: z.string(),
});
export type AnswerRequest = z.infer<typeof AnswerRequest>;

export const Answer = z.object({ text: z.string() });
export type Answer = z.infer<typeof Answer>;

/** One execution of a step's cell; a failed attempt is followed by a fix. */
export const Attempt = z.object({
  code: z.string(),
  execution: Execution,
  /** the evaluator's word on this attempt */
  feedback: z.string().default(""),
  /** the repair that produced this attempt's code, if it is a fix */
  fixRule: z.string().default(""),
});
export type Attempt = z.infer<typeof Attempt>;

export const ReflectRequest = z.object({
  step: StepSummary,
  attempts: z.array(Attempt),
  parent: StepSummary.nullable().default(null),
});
export type ReflectRequest = z.infer<typeof ReflectRequest>;

export const Reflection = z.object({
  lesson: z.string(),
  /** the Markdown note for this loop iteration */
  note: z.string(),
});
export type Reflection = z.infer<typeof Reflection>;

/** Each role's request and reply: what a transport validates and an agent implements. */
export const Roles = {
  planner: { request: PlanRequest, reply: Plan },
  coder: { request: z.discriminatedUnion("kind", [CodeRequest, FixRequest]), reply: Cell },
  evaluator: {
    request: z.discriminatedUnion("kind", [EvaluateRequest, AnswerRequest]),
    reply: z.union([Evaluation, Answer]),
  },
  reflector: { request: ReflectRequest, reply: Reflection },
} as const;
export type Role = keyof typeof Roles;
export type RequestOf<R extends Role> = z.infer<(typeof Roles)[R]["request"]>;
export type ReplyOf<R extends Role> = z.infer<(typeof Roles)[R]["reply"]>;

/** Every agent: one typed message in, one typed message out. */
export interface Agent<R extends Role> {
  handle(request: RequestOf<R>): Promise<ReplyOf<R>>;
}

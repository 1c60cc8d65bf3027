/** Small runs for the template and planner tests: a titanic-like profile, steps made by hand. */
import {
  type Metrics,
  type RunView,
  RunView as RunViewSchema,
  type StepSummary,
  type Subtask,
  type Verdict,
} from "../../../core/src/messages.ts";

export const OPTIONS = {
  seed: 0,
  task: "binary",
  metric: "roc_auc",
  target: "survived",
  path: "data/titanic.csv",
  folds: 5,
} as const;

export const PROFILE = {
  rows: 300,
  columns: {
    passenger_id: { kind: "identifier", missing: 0.0, unique: 300 },
    age: { kind: "numeric", missing: 0.2, unique: 80, skew: 0.4 },
    fare: { kind: "numeric", missing: 0.0, unique: 200, skew: 4.8 },
    sex: { kind: "categorical", missing: 0.0, unique: 2 },
  },
  suspicious: { passenger_id: "identifier: 300 distinct values in 300 rows" },
  target: { classes: { "0": 180, "1": 120 }, majority: 0.6 },
  time_column: null,
  group_column: null,
};

export interface ViewOptions {
  steps?: StepSummary[];
  best?: number | null;
  timeLeft?: number;
  stepsLeft?: number;
  profile?: Record<string, unknown>;
  options?: Record<string, unknown>;
  task?: "binary" | "multiclass" | "regression";
}

export function view(o: ViewOptions = {}): RunView {
  const options = { ...OPTIONS, ...(o.task ? { task: o.task } : {}), ...o.options };
  return RunViewSchema.parse({
    task: options.task,
    metric: options.metric,
    profile: o.profile ?? PROFILE,
    steps: o.steps ?? [],
    bestStep: o.best ?? null,
    timeLeftS: o.timeLeft ?? 1000,
    stepsLeft: o.stepsLeft ?? 40,
    options,
  });
}

export function metrics(mean: number, higherIsBetter = true): Metrics {
  return {
    metric: "roc_auc",
    higherIsBetter,
    folds: [mean - 0.01, mean, mean + 0.01],
    mean,
    std: 0.01,
    secondary: {},
    fitTimeS: 0,
    foldJobs: 1,
  };
}

export function summary(
  id: number,
  task: Subtask,
  verdict: Verdict,
  m: Metrics | null = null,
  duration = 1,
): StepSummary {
  return {
    id,
    parent: task.parent,
    templateId: task.templateId,
    kind: task.kind,
    hypothesis: task.hypothesis,
    params: task.params,
    verdict,
    metrics: m,
    gain: null,
    durationS: duration,
    attempts: 1,
    error: null,
    lesson: "",
  };
}

/** A realistic finished run, as the report receives it: the titanic steps of an offline run. */
import type { Metrics, StepSummary } from "../../../core/src/messages.ts";
import type { ReportInputData } from "../../../core/src/report/input.ts";
import type { PathCell } from "../../../core/src/report/notebook.ts";

function metrics(mean: number, std: number, folds: number[]): Metrics {
  return {
    metric: "roc_auc",
    higherIsBetter: true,
    folds,
    mean,
    std,
    secondary: { accuracy: mean - 0.0431 },
    fitTimeS: 0.4,
    foldJobs: 1,
  };
}

function s(
  partial: Partial<StepSummary> &
    Pick<StepSummary, "id" | "parent" | "templateId" | "kind" | "hypothesis" | "verdict">,
): StepSummary {
  return {
    params: {},
    metrics: null,
    gain: null,
    durationS: 0.5,
    attempts: 1,
    error: null,
    lesson: "",
    ...partial,
  };
}

export const STEPS: StepSummary[] = [
  s({
    id: 0,
    parent: null,
    templateId: "profile",
    kind: "profile",
    hypothesis: "profile the table",
    verdict: "done",
  }),
  s({
    id: 1,
    parent: 0,
    templateId: "validation",
    kind: "validation",
    hypothesis: "stratified folds",
    verdict: "done",
  }),
  s({
    id: 2,
    parent: 1,
    templateId: "baseline",
    kind: "baseline",
    hypothesis: "a dummy baseline",
    verdict: "done",
    params: { change: { model: "dummy" } },
    metrics: metrics(0.5, 0, [0.5, 0.5, 0.5]),
  }),
  s({
    id: 3,
    parent: 2,
    templateId: "linear",
    kind: "model",
    hypothesis: "a linear model | scaled",
    verdict: "accepted",
    params: { change: { model: "logistic" } },
    metrics: metrics(0.8423, 0.0151, [0.8281, 0.8402, 0.8586]),
    gain: 0.3423,
    durationS: 2.25,
  }),
  s({
    id: 4,
    parent: 3,
    templateId: "lightgbm",
    kind: "model",
    hypothesis: "gradient boosting beats the linear model",
    verdict: "accepted",
    params: { change: { model: "lightgbm", params: { num_leaves: 15 } } },
    metrics: metrics(0.8701, 0.0122, [0.8577, 0.8702, 0.8824]),
    gain: 0.0278,
    durationS: 4.5,
  }),
  s({
    id: 5,
    parent: 4,
    templateId: "missing_indicators",
    kind: "feature",
    hypothesis: "missing ages carry signal",
    verdict: "rejected",
    metrics: metrics(0.8694, 0.0131, [0.8561, 0.8699, 0.8822]),
    gain: -0.0007,
    lesson: "age missingness adds nothing",
  }),
  s({
    id: 6,
    parent: 4,
    templateId: "target_encoding",
    kind: "feature",
    hypothesis: "target-encode the cabin deck",
    verdict: "failed",
    attempts: 3,
    error: "KeyError: 'deck'",
  }),
  s({
    id: 7,
    parent: 4,
    templateId: "tune",
    kind: "tuning",
    hypothesis: "tune the learning rate",
    verdict: "accepted",
    params: { change: { params: { num_leaves: 15, learning_rate: 0.03 } } },
    metrics: metrics(0.8813, 0.0109, [0.8702, 0.8815, 0.8922]),
    gain: 0.0112,
    attempts: 2,
    durationS: 12.75,
  }),
  s({
    id: 8,
    parent: 7,
    templateId: "final",
    kind: "final",
    hypothesis: "refit on all rows",
    verdict: "done",
  }),
];

export const DRIVERS = {
  columns: [
    { column: "sex", importance: 0.1432, effect: "share of survived=1: female 74%, male 19%" },
    { column: "pclass", importance: 0.0611, effect: "falls as pclass rises (corr -0.34)" },
  ],
};

export const PROFILE = {
  rows: 891,
  columns: {
    pclass: { kind: "numeric", dtype: "int64", missing: 0, unique: 3, skew: -0.63 },
    sex: { kind: "categorical", dtype: "object", missing: 0, unique: 2 },
    age: { kind: "numeric", dtype: "float64", missing: 0.1987, unique: 88, skew: 0.39 },
    alive: { kind: "categorical", dtype: "object", missing: 0, unique: 2 },
    passenger_id: { kind: "identifier", dtype: "int64", missing: 0, unique: 891 },
  },
  suspicious: {
    alive: "leak: alone it predicts the target (purity 1.000)",
    passenger_id: "identifier: 891 distinct values in 891 rows",
  },
  target: { classes: { "0": 549, "1": 342 }, majority: 0.6162 },
  time_column: null,
  group_column: null,
};

/** The winning path: the chain of parents that ends in the final refit. */
export function pathCells(): PathCell[] {
  return [0, 1, 2, 3, 4, 7, 8].map((id) => ({
    step: STEPS.find((x) => x.id === id)!,
    code: `# step ${id}\nprint(${id})\n`,
  }));
}

export function reportInput(): ReportInputData {
  return {
    question: "Who survived, and why?",
    answer: "Women and first-class passengers survived most.",
    dataset: { path: "/data/titanic.csv", sha256: "0123456789abcdef".repeat(4) },
    target: "survived",
    task: "binary",
    metric: "roc_auc",
    profile: PROFILE,
    validation: { scheme: "stratified", n_splits: 5, column: null, why: "keeps class balance per fold" },
    steps: STEPS,
    bestStep: 7,
    path: pathCells(),
    drivers: DRIVERS,
    plots: [{ title: "final", path: "plots/importance.png" }],
    result: { status: "finished", elapsedS: 63.25 },
    stopReason: "every phase done",
  };
}

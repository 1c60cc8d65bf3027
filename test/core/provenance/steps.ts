/** Realistic steps, attempts and run meta for the provenance tests, the crash writer and the bench. */
import { RECORD_MIME } from "@dsassist/sandboxes";
import { type Attempt, RunOptions, type StepSummary } from "../../../core/src/messages.ts";
import type { RunMeta } from "../../../core/src/provenance/store.ts";

/** The crash writer's steps: many large attempts, so most of its time is inside a transaction. */
export const ATTEMPTS_PER_STEP = 12;
export const STDOUT_BYTES = 200_000;

export const PROFILE = {
  rows: 891,
  columns: { age: { kind: "numeric", dtype: "float64", missing: 0.1987, unique: 88, skew: 0.39 } },
  suspicious: { alive: "leak: alone it predicts the target (purity 1.000)" },
  target: { classes: { "0": 549, "1": 342 }, majority: 0.6162 },
  time_column: null,
  group_column: null,
};

export function runMeta(id = "run-1"): RunMeta {
  const options = RunOptions.parse({
    path: "/data/titanic.csv",
    target: "survived",
    task: "binary",
    metric: "roc_auc",
  });
  return {
    id,
    dataset: {
      path: "/data/titanic.csv",
      sha256: "ab".repeat(32),
      bytes: 61_194,
      rows: 891,
      columns: 12,
      mediaType: "text/csv",
    },
    target: "survived",
    task: "binary",
    metric: "roc_auc",
    question: "Who survives, and why?",
    seed: 7,
    budget: { wallS: 600, steps: 40, usd: null },
    options,
    config: { cellTimeoutS: 120, parallel: 1, note: 'it\'s "quoted" ) RETURN 1 //' },
    startedAt: "2026-01-02T03:04:05.000Z",
  };
}

/** A judged step with metrics (mean = `score`), or an unjudged one (`score` null). */
export function step(id: number, parent: number | null, score: number | null, lesson = ""): StepSummary {
  const metrics =
    score === null
      ? null
      : {
          metric: "roc_auc",
          higherIsBetter: true,
          folds: [score - 0.01, score, score + 0.01],
          mean: score,
          std: 0.008164965809277223,
          secondary: { accuracy: 0.8 },
          fitTimeS: 0.25,
          foldJobs: 1,
        };
  return {
    id,
    parent,
    templateId: score === null ? "profile" : "gradient_boosting",
    kind: score === null ? "profile" : "model",
    hypothesis: `step ${id}: 'quotes', "doubles", $dollar and {braces}`,
    params: {
      change: { model: "lightgbm", params: { num_leaves: 31, rate: 0.05 } },
      tags: ["a", null, true],
    },
    verdict: score === null ? "done" : "accepted",
    metrics,
    gain: score === null ? null : 0.0125,
    durationS: id % 2 === 0 ? id + 1 : id + 0.5, // integral doubles too: Kùzu must keep them doubles
    attempts: 2,
    error: null,
    lesson,
  };
}

/** A failed attempt, then its fix; the fix publishes a profile record and an image. */
export function attempts(id: number, stdoutBytes = 64): Attempt[] {
  const code = `import pandas as pd\nprint(${id})\n`;
  return [
    {
      code,
      execution: {
        ok: false,
        stdout: "",
        stderr: "warning\n",
        error: {
          name: "NameError",
          value: "name 'pd' is not defined",
          traceback: ["Traceback", "NameError"],
        },
        outputs: [],
        durationS: 0.01,
      },
      feedback: "the cell failed: NameError",
      fixRule: "",
    },
    {
      code: `${code}# fixed\n`,
      execution: {
        ok: true,
        stdout: `${id} `.padEnd(stdoutBytes, "x"),
        stderr: "",
        outputs: [
          { mime: "text/plain", text: `${id}` },
          { mime: "image/png", path: `plots/step-${id}.png` },
          { mime: RECORD_MIME("profile"), data: PROFILE },
        ],
        durationS: 1,
      },
      feedback: "",
      fixRule: "import_missing",
    },
  ];
}

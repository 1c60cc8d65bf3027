/** "Applies when": each condition of the vocabulary, and the shipped templates on small profiles. */
import { describe, expect, it } from "vitest";
import type { RunView, Subtask } from "../../../core/src/messages.ts";
import { Condition, holds } from "../../../core/src/templates/conditions.ts";
import { loadTemplates } from "../../../core/src/templates/load.ts";
import { profileOf } from "../../../core/src/templates/run.ts";
import { metrics, PROFILE, summary, view } from "./fixtures.ts";

const TEMPLATES = loadTemplates();
const template = (id: string) => {
  const found = TEMPLATES.find((t) => t.id === id);
  if (!found) throw new Error(`no template ${id}`);
  return found;
};

const task = (
  templateId: string,
  kind: string,
  params: Subtask["params"],
  parent: number | null,
): Subtask => ({
  templateId,
  kind,
  hypothesis: templateId,
  params,
  judged: kind !== "setup",
  parent,
});

/** Set-up done, baseline kept, then one kept step per model (with its change) in order. */
function modelled(models: string[], o: Parameters<typeof view>[0] = {}): RunView {
  const run = view(o);
  for (const [i, id] of ["setup", "profile", "guard", "validation"].entries()) {
    run.steps.push(summary(i, task(id, id, {}, i === 0 ? null : i - 1), "done"));
  }
  run.steps.push(
    summary(4, task("baseline", "baseline", { change: { model: "dummy" } }, 3), "accepted", metrics(0.5)),
  );
  models.forEach((model, i) => {
    const id = 5 + i;
    const change = { model, params: {} };
    run.steps.push(
      summary(id, task(model, "model", { change }, id - 1), "accepted", metrics(0.6 + 0.01 * i)),
    );
  });
  run.bestStep = run.steps.at(-1)?.id ?? null;
  return run;
}

const check = (condition: Record<string, unknown>, run: RunView) =>
  holds(Condition.parse(condition), { run, profile: profileOf(run), library: TEMPLATES });

describe("conditions", () => {
  it("target: whether the run has one", () => {
    expect(check({ target: true }, view())).toEqual([]);
    expect(check({ target: false }, view())).toBeNull();
    expect(check({ target: false }, view({ options: { target: null } }))).toEqual([]);
  });

  it("target table: the target's skew and minimum", () => {
    const skewed = { ...PROFILE, target: { skew: 2.5, min: 0 } };
    expect(check({ target: { skew_above: 1, min_at_least: 0 } }, view({ profile: skewed }))).toEqual([]);
    expect(check({ target: { skew_above: 3 } }, view({ profile: skewed }))).toBeNull();
    expect(check({ target: { min_at_least: 1 } }, view({ profile: skewed }))).toBeNull();
    expect(check({ target: { skew_above: 1 } }, view())).toBeNull(); // no skew known
  });

  it("task", () => {
    expect(check({ task: ["regression"] }, view({ task: "regression" }))).toEqual([]);
    expect(check({ task: ["regression"] }, view())).toBeNull();
  });

  it("after: a step of that template done or kept", () => {
    const run = modelled([]);
    expect(check({ after: ["guard", "baseline"] }, run)).toEqual([]);
    expect(check({ after: "linear" }, run)).toBeNull();
    run.steps.push(summary(5, task("linear", "model", {}, 4), "rejected", metrics(0.4)));
    expect(check({ after: "linear" }, run)).toBeNull(); // judged but not kept
  });

  it("model_tried and best_model_not", () => {
    expect(check({ model_tried: true }, modelled([]))).toBeNull();
    expect(check({ model_tried: true }, modelled(["linear"]))).toEqual([]);
    expect(check({ best_model_not: ["linear"] }, modelled(["linear"]))).toBeNull();
    expect(check({ best_model_not: ["ensemble"] }, modelled(["linear"]))).toEqual([]);
  });

  it("models_compared: every model template that applies was tried", () => {
    expect(
      check({ models_compared: true }, modelled(["linear", "lightgbm", "random_forest", "extra_trees"])),
    ).toBeNull();
    const all = modelled(["linear", "lightgbm", "random_forest", "extra_trees", "knn"]);
    expect(check({ models_compared: true }, all)).toEqual([]);
    // knn does not apply beyond 5,000 rows: the others are enough
    const big = modelled(["linear", "lightgbm", "random_forest", "extra_trees"], {
      profile: { ...PROFILE, rows: 9000 },
    });
    expect(check({ models_compared: true }, big)).toEqual([]);
  });

  it("rows, usable columns and time left", () => {
    const run = view();
    expect(check({ rows_at_most: 300, rows_at_least: 300 }, run)).toEqual([]);
    expect(check({ rows_at_most: 299 }, run)).toBeNull();
    expect(check({ rows_at_least: 301 }, run)).toBeNull();
    expect(check({ columns_at_least: 3 }, run)).toEqual([]); // age, fare, sex: not the identifier
    expect(check({ columns_at_least: 4 }, run)).toBeNull();
    expect(check({ time_left_below: 1001 }, run)).toEqual([]);
    expect(check({ time_left_below: 1000 }, run)).toBeNull();
  });

  it("columns: the usable columns that match, bound for $columns", () => {
    const run = view();
    expect(check({ columns: { kind: "numeric" } }, run)).toEqual(["age", "fare"]);
    expect(check({ columns: { kind: ["numeric", "categorical"], missing_above: 0 } }, run)).toEqual(["age"]);
    expect(check({ columns: { kind: "numeric", abs_skew_above: 1 } }, run)).toEqual(["fare"]);
    expect(check({ columns: { kind: "categorical", unique_above: 1 } }, run)).toEqual(["sex"]);
    expect(check({ columns: { kind: "categorical", unique_above: 10 } }, run)).toBeNull();
    expect(check({ columns: { kind: "identifier" } }, run)).toBeNull(); // suspicious: excluded
  });

  it("all conditions must hold", () => {
    expect(check({ target: true, rows_at_most: 10 }, view())).toBeNull();
  });
});

describe("the shipped templates on small profiles", () => {
  const options = (id: string, run: RunView) => template(id).options(run);

  it("feature templates follow the columns, on the best single pipeline", () => {
    const profile = {
      rows: 500,
      columns: {
        when: { kind: "datetime", missing: 0, unique: 500 },
        note: { kind: "text", missing: 0, unique: 480 },
        city: { kind: "categorical", missing: 0, unique: 40 },
        price: { kind: "numeric", missing: 0, unique: 400, skew: -3.2 },
        size: { kind: "numeric", missing: 0, unique: 400, skew: 1.5 },
      },
      suspicious: {},
    };
    const run = modelled(["lightgbm"], { profile });
    expect(options("date_parts", run)).toEqual([{ change: { date_parts: true } }]);
    expect(options("text_tfidf", run)).toEqual([{ change: { text: true } }]);
    expect(options("target_encoding", run)).toEqual([{ change: { categorical: "target" } }]);
    expect(options("log_skewed", run)).toEqual([{ change: { log_features: ["price", "size"] } }]);
    expect(options("missing_indicators", run)).toEqual([]); // no gaps
    expect(options("date_parts", modelled([], { profile }))).toEqual([]); // no model yet
    const ensembled = modelled(["lightgbm", "ensemble"], { profile });
    expect(options("date_parts", ensembled)).toEqual([]);
  });

  it("other_encoding picks the encoding the best model does not get by default", () => {
    expect(options("other_encoding", modelled(["linear"]))).toEqual([{ change: { categorical: "ordinal" } }]);
    expect(options("other_encoding", modelled(["lightgbm"]))).toEqual([
      { change: { categorical: "onehot" } },
    ]);
  });

  it("log_target applies to a skewed, non-negative regression target", () => {
    const skewed = { ...PROFILE, target: { mean: 3, std: 4, min: 0, max: 80, skew: 3.1 } };
    const run = modelled(["linear"], { profile: skewed, task: "regression" });
    expect(options("log_target", run)).toEqual([{ change: { log_target: true } }]);
    const negative = { ...skewed, target: { ...skewed.target, min: -1 } };
    expect(options("log_target", modelled(["linear"], { profile: negative, task: "regression" }))).toEqual(
      [],
    );
    expect(options("log_target", modelled(["linear"], { profile: skewed }))).toEqual([]); // binary
  });

  it.each([
    [{}, {}, "binary", { scheme: "stratified", column: null, why: "keeps class balance per fold" }],
    [{}, {}, "regression", { scheme: "kfold", column: null, why: "independent rows" }],
    [
      {},
      { time_column: "day" },
      "binary",
      { scheme: "time", column: "day", why: "rows are ordered by 'day'" },
    ],
    [
      {},
      { group_column: "user_id" },
      "binary",
      { scheme: "group", column: "user_id", why: "rows repeat per 'user_id'" },
    ],
    [{ groupColumn: "shop" }, { time_column: "day" }, "binary", { scheme: "group", column: "shop" }],
    [
      { timeColumn: "at", folds: 3 },
      { group_column: "user_id" },
      "binary",
      { scheme: "time", n_splits: 3, column: "at" },
    ],
  ] as const)("validation: options %o, profile %o, %s", (opts, found, mlTask, expected) => {
    const run = modelled([], { options: opts, profile: { ...PROFILE, ...found }, task: mlTask });
    run.steps = run.steps.slice(0, 3); // up to the guard
    const [params] = options("validation", run);
    expect(params).toMatchObject({ n_splits: 5, ...expected });
  });

  it("tune: each variant of the best model once, on top of its current settings", () => {
    const run = modelled(["linear"]);
    expect(options("tune", run).map((p) => p.variant)).toEqual([{ C: 0.1 }, { C: 10 }]);
    const regression = modelled(["linear"], { task: "regression" });
    expect(options("tune", regression).map((p) => p.variant)).toEqual([{ alpha: 10 }, { alpha: 0.1 }]);
    const [first] = options("tune", run);
    run.steps.push(summary(6, task("tune", "tuning", first ?? {}, 5), "accepted", metrics(0.9)));
    run.bestStep = 6;
    expect(options("tune", run)).toEqual([
      { change: { params: { C: 10 } }, model: "linear", variant: { C: 10 } }, // C: 0.1 was tried
    ]);
  });

  it("ensemble: two model families at least", () => {
    expect(options("ensemble", modelled(["linear"]))).toEqual([]);
    const [params] = options("ensemble", modelled(["linear", "lightgbm", "knn", "extra_trees"]));
    expect(params?.from_steps).toEqual([8, 7, 6]);
  });

  it("setup and load split runs with and without a target", () => {
    expect(options("load", view())).toEqual([]);
    expect(options("load", view({ options: { target: null } }))).toEqual([{ path: "data/titanic.csv" }]);
    expect(options("setup", view({ options: { target: null } }))).toEqual([]);
  });

  it("a malformed profile record is named", () => {
    const run = view({ profile: { rows: "many" } });
    expect(() => options("setup", run)).toThrow(/the run's profile record is malformed at rows: /);
  });
});

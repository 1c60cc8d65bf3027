/**
 * The four templates whose parameters are computed from the run: the rule is code here,
 * its data (variants, wording, sizes) lives in the template file under `[data]`.
 */
import { z } from "zod";
import { Json, type Params } from "../messages.ts";
import type { Facts } from "./conditions.ts";
import { paramsKey } from "./python.ts";
import { bestPerModel, isObject, ranked, type Spec, singleBest, specOf } from "./run.ts";

export interface Generator<D> {
  /** what the file's `[data]` table must hold */
  data: z.ZodType<D>;
  /** the parameter sets to try now; `id` is the template's own id */
  generate(facts: Facts, data: D, id: string): Params[];
}

const generator = <D>(data: z.ZodType<D>, generate: Generator<D>["generate"]): Generator<D> => ({
  data,
  generate,
});

/** Time folds when rows are ordered in time, group folds when rows repeat per entity, else (stratified) k-fold. */
const validation = generator(
  z.strictObject({
    why: z.strictObject({ time: z.string(), group: z.string(), kfold: z.string(), stratified: z.string() }),
  }),
  ({ run, profile }, { why }) => {
    const o = run.options;
    const n_splits = o.folds;
    const time = o.timeColumn ?? (o.groupColumn === null ? profile.time_column : null);
    if (time !== null) return [{ scheme: "time", n_splits, column: time, why: named(why.time, time) }];
    const group = o.groupColumn ?? profile.group_column;
    if (group !== null) return [{ scheme: "group", n_splits, column: group, why: named(why.group, group) }];
    if (run.task === "regression") return [{ scheme: "kfold", n_splits, column: null, why: why.kfold }];
    return [{ scheme: "stratified", n_splits, column: null, why: why.stratified }];
  },
);

const named = (text: string, column: string) => text.replaceAll("{column}", column);

const Variants = z.record(z.string(), z.array(z.record(z.string(), Json)));

/** Each variant of the best model's settings once, on top of its current parameters. */
const tuning = generator(
  z.strictObject({ variants: Variants, regression: Variants.default({}) }),
  ({ run }, data, id) => {
    const spec = specOf(run, run.bestStep);
    const model = typeof spec.model === "string" ? spec.model : "dummy";
    const variants =
      (run.task === "regression" ? data.regression[model] : undefined) ?? data.variants[model] ?? [];
    const base = isObject(spec.params) ? spec.params : {};
    // each variant once, even after the base moved
    const tried = new Set(
      run.steps.filter((s) => s.templateId === id).map((s) => paramsKey(s.params.variant ?? null)),
    );
    return variants
      .filter((v) => !tried.has(paramsKey(v)))
      .map((variant) => ({ change: { params: { ...base, ...variant } }, model, variant }));
  },
);

/** Averaging the best pipeline of each of the top model families. */
const ensemble = generator(z.strictObject({ members: z.number().int().min(2) }), ({ run }, data) => {
  const top = ranked(run, bestPerModel(run)).slice(0, data.members);
  if (top.length < 2) return [];
  const members: Spec[] = top.map((id) => specOf(run, id));
  return [{ change: { model: "ensemble", members, params: {} }, from_steps: top }];
});

/**
 * The next Bayesian sample for the best kept single-model pipeline. The kernel samples
 * (Optuna TPE, rebuilt from the earlier trials given here), so the plan stays cheap and
 * reproducible; the controller records what it sampled as the step's `sampled` and `change`.
 * A failure that says the space is exhausted ends the search of that model.
 */
const explore = generator(
  z.strictObject({ max_trials: z.record(z.string(), z.number().int().positive()) }),
  ({ run }, data, id) => {
    const step = singleBest(run);
    const model = specOf(run, step).model;
    if (step === null || typeof model !== "string" || !(model in data.max_trials)) return [];
    const ofModel = (s: { templateId: string; params: Params }) =>
      s.templateId === id && s.params.model === model;
    const done = run.steps.filter(ofModel);
    const running = run.running.filter(ofModel);
    if (done.some((s) => s.verdict === "failed" && (s.error ?? "").includes("SearchExhausted"))) return [];
    const trials = done.flatMap((s) =>
      isObject(s.params.sampled) ? [{ params: s.params.sampled, score: s.metrics?.mean ?? null }] : [],
    );
    // what running trials sampled is known only once the controller has recorded it
    const pending = running.flatMap((t) => (isObject(t.params.sampled) ? [t.params.sampled] : []));
    const higher_is_better = run.steps.find((s) => s.metrics !== null)?.metrics?.higherIsBetter ?? true;
    const trial = done.length + running.length + 1;
    if (trial > data.max_trials[model]!) return []; // a small space is pinned down: stop repeating it
    return [{ model, trial, trials, pending, higher_is_better }];
  },
);

export const GENERATORS = { validation, tuning, ensemble, explore } as const;
export type GeneratorName = keyof typeof GENERATORS;

/** A generator with its file's data checked: the parameter sets for a run, or the data's first problem. */
export function bindGenerator(
  name: GeneratorName,
  raw: unknown,
  id: string,
): { generate: (facts: Facts) => Params[] } | { error: z.ZodError } {
  const g = GENERATORS[name] as Generator<unknown>;
  const parsed = g.data.safeParse(raw);
  if (!parsed.success) return { error: parsed.error };
  return { generate: (facts: Facts) => g.generate(facts, parsed.data, id) };
}

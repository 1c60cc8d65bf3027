/** The planner through its message interface: PlanRequest in, Plan out, over the shipped templates. */
import { describe, expect, it } from "vitest";
import { PHASES, Planner } from "../../../core/src/agents/planner.ts";
import {
  type Metrics,
  type Plan,
  type RunView,
  refitReserveS,
  type StepSummary,
  type Subtask,
  type Verdict,
} from "../../../core/src/messages.ts";
import { loadTemplates } from "../../../core/src/templates/load.ts";
import { paramsKey } from "../../../core/src/templates/python.ts";
import { metrics, OPTIONS, summary, view } from "../templates/fixtures.ts";

const TEMPLATES = loadTemplates();
const SETUP_KINDS = ["setup", "profile", "guard", "validation"];

/** Pure exploitation: the template phases in order, each hypothesis once. */
const exploiter = () => new Planner(TEMPLATES, 0);

async function plan(planner: Planner, run: RunView): Promise<Plan> {
  return planner.handle({ run });
}

async function nextTask(planner: Planner, run: RunView): Promise<Subtask> {
  const reply = await plan(planner, run);
  expect(reply.done, reply.reason).toBe(false);
  expect(reply.tasks).toHaveLength(1);
  return reply.tasks[0] as Subtask;
}

/**
 * What the controller records for a task: for an explore step, what the kernel sampled
 * (here a stand-in that differs per trial) merged into its parameters.
 */
function record(run: RunView, task: Subtask, verdict: Verdict, m: Metrics | null, duration = 1): StepSummary {
  const trial = task.params.trial;
  const sampled = task.kind === "explore" && typeof trial === "number" ? { n_estimators: 100 + trial } : null;
  const params = sampled
    ? { ...task.params, sampled, change: { params: { ...sampled, subsample_freq: 1 } } }
    : task.params;
  const step = summary(run.steps.length, { ...task, params }, verdict, m, duration);
  run.steps.push(step);
  if (verdict === "accepted") run.bestStep = step.id;
  run.stepsLeft -= 1;
  return step;
}

/** Plan one step and record it with the given outcome (done for unjudged steps). */
async function advance(
  planner: Planner,
  run: RunView,
  verdict?: Verdict,
  duration = 1,
): Promise<StepSummary> {
  const task = await nextTask(planner, run);
  const outcome = verdict ?? (task.judged ? "accepted" : "done");
  const judged = task.judged && (outcome === "accepted" || outcome === "rejected");
  return record(run, task, outcome, judged ? metrics(0.6 + 0.01 * run.steps.length) : null, duration);
}

/** A run whose set-up steps are done and whose baseline is accepted. */
async function throughBaseline(planner: Planner, baselineDuration = 1): Promise<RunView> {
  const run = view();
  for (const _ of SETUP_KINDS) await advance(planner, run);
  const baseline = await advance(planner, run, "accepted", baselineDuration);
  expect(baseline.templateId).toBe("baseline");
  return run;
}

/** A whole run to its end: judged steps kept when `accept(step id)` says so (the baseline always). */
async function simulate(planner: Planner, accept: (id: number) => boolean, limit = 100) {
  const run = view();
  for (let i = 0; i < limit; i++) {
    const reply = await plan(planner, run);
    if (reply.done) return { run, last: reply };
    const [task] = reply.tasks as [Subtask];
    if (task.kind === "model") {
      const baseline = run.steps.find((s) => s.kind === "baseline")?.id;
      expect(task.parent, "a model family is judged against the baseline").toBe(baseline);
    } else if (task.judged && run.bestStep !== null && task.kind !== "explore") {
      expect(task.parent, "a judged task must build on the best step").toBe(run.bestStep);
    }
    const verdict: Verdict = !task.judged
      ? "done"
      : accept(run.steps.length) || task.kind === "baseline"
        ? "accepted"
        : "rejected";
    record(run, task, verdict, task.judged ? metrics(0.6 + 0.005 * run.steps.length) : null);
  }
  throw new Error(`the planner did not finish in ${limit} steps`);
}

/** Steps up to a budget of steps, every other judged step kept. */
async function simulateUpto(
  share: number,
  steps: number,
  planner = new Planner(TEMPLATES, share),
  exploreShare = 0.3,
) {
  const run = view({ stepsLeft: steps, options: { exploreShare } });
  for (let i = 0; i < steps - 1; i++) {
    const reply = await plan(planner, run);
    if (reply.done) break;
    const [task] = reply.tasks as [Subtask];
    const kept = run.steps.length % 2 === 0 || task.kind === "baseline";
    const verdict: Verdict = !task.judged ? "done" : kept ? "accepted" : "rejected";
    record(run, task, verdict, task.judged ? metrics(0.6 + 0.001 * run.steps.length) : null);
  }
  return run;
}

const key = (s: { templateId: string; params: Subtask["params"] }) =>
  `${s.templateId} ${paramsKey(s.params)}`;

describe("the offline planner", () => {
  it("starts with setup, given the run's options", async () => {
    const task = await nextTask(exploiter(), view({ options: { keep: ["cabin"] } }));
    expect(task).toMatchObject({ templateId: "setup", kind: "setup", judged: false, parent: null });
    const { seed, task: mlTask, metric, target, path } = OPTIONS;
    expect(task.params).toEqual({ seed, task: mlTask, metric, target, path, keep: ["cabin"] });
    expect(task.hypothesis).toContain("survived");
  });

  it("chains set-up steps to the previous step, with stratified folds for a binary task", async () => {
    const planner = exploiter();
    const run = view();
    const steps = [];
    for (const _ of SETUP_KINDS) steps.push(await advance(planner, run));
    expect(steps.map((s) => s.kind)).toEqual(SETUP_KINDS);
    expect(steps.map((s) => s.parent)).toEqual([null, 0, 1, 2]);
    expect(steps.at(-1)?.params.scheme).toBe("stratified"); // binary task, no group or time column
  });

  it("builds judged tasks on the best step", async () => {
    const planner = exploiter();
    const run = await throughBaseline(planner);
    const task = await nextTask(planner, run);
    expect(task.kind).toBe("model");
    expect(task.judged).toBe(true);
    expect(task.parent).toBe(4);
    expect(run.bestStep).toBe(4);
  });

  it.each([
    ["every step kept", () => true],
    ["every other step kept", (i: number) => i % 2 === 0],
    ["no step kept", () => false],
  ])("goes through the phases in order, each hypothesis once (%s)", async (_name, accept) => {
    const { run, last } = await simulate(exploiter(), accept);
    const kinds = run.steps.map((s) => s.kind);
    const order = kinds.map((k) => PHASES.indexOf(k as (typeof PHASES)[number]));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(kinds.slice(0, 5)).toEqual([...SETUP_KINDS, "baseline"]);
    expect(kinds).toContain("model");
    expect(kinds).toContain("feature");
    expect(kinds.at(-1)).toBe("final");
    expect(kinds.filter((k) => k === "final")).toHaveLength(1);
    expect(last.done).toBe(true);
    const keys = run.steps.map(key);
    expect(new Set(keys).size, "a (template, params) pair was planned twice").toBe(keys.length);
    // features follow the profile: the skewed column is logged, the suspicious id never used
    const changes = run.steps.filter((s) => s.kind === "feature").map((s) => s.params.change);
    expect(changes).toContainEqual({ log_features: ["fare"] });
    expect(changes).toContainEqual({ missing_indicators: true }); // "age" has gaps
    expect(changes.some((c) => typeof c === "object" && c !== null && "categorical" in c)).toBe(true); // "sex"
    expect(changes).not.toContainEqual({ categorical: "target" }); // "sex" has two values only
    expect(
      changes.some((c) => typeof c === "object" && c !== null && ("date_parts" in c || "text" in c)),
    ).toBe(false);
    expect(JSON.stringify(run.steps.map((s) => s.params))).not.toContain("passenger_id");
  });

  it("does not plan a tried template again, even if it failed", async () => {
    const planner = exploiter();
    const run = await throughBaseline(planner);
    const linear = await advance(planner, run, "failed");
    expect(linear.templateId).toBe("linear");
    const task = await nextTask(planner, run);
    expect(task.templateId).toBe("lightgbm");
  });

  it("ends the run when setup failed, saying why", async () => {
    const planner = exploiter();
    const run = view();
    await advance(planner, run, "failed");
    const reply = await plan(planner, run);
    expect(reply).toMatchObject({ done: true, tasks: [] });
    expect(reply.reason).toMatch(/no step applies/);
  });

  it("plans the final refit when one step is left", async () => {
    const planner = exploiter();
    const run = await throughBaseline(planner);
    run.stepsLeft = 2;
    expect((await nextTask(planner, run)).kind).toBe("model");
    run.stepsLeft = 1;
    const task = await nextTask(planner, run);
    expect(task).toMatchObject({ templateId: "final", kind: "final", parent: run.bestStep });
  });

  it("plans the final refit when time is short", async () => {
    const planner = exploiter();
    const run = await throughBaseline(planner, 10);
    expect((await nextTask(planner, run)).kind).toBe("model");
    // refit (1.5 x the best step + 5 s) plus one more 10 s step does not fit in 29 s
    expect(refitReserveS(run)).toBe(20);
    run.timeLeftS = 31;
    expect((await nextTask(planner, run)).kind).toBe("model");
    run.timeLeftS = 29;
    expect(await nextTask(planner, run)).toMatchObject({ templateId: "final", parent: run.bestStep });
  });

  it("plans the final refit once a model exists, whatever is left of the budget", async () => {
    const planner = exploiter();
    const run = await throughBaseline(planner);
    Object.assign(run, { timeLeftS: -30, stepsLeft: 0 });
    expect((await nextTask(planner, run)).templateId).toBe("final");
  });

  it("plans no final refit without a model to refit", async () => {
    expect((await nextTask(exploiter(), view({ stepsLeft: 1 }))).templateId).toBe("setup");
  });

  it("is done after the final refit", async () => {
    const planner = exploiter();
    const run = await throughBaseline(planner);
    run.stepsLeft = 1;
    await advance(planner, run);
    expect(run.steps.at(-1)?.kind).toBe("final");
    run.stepsLeft = 30;
    expect(await plan(planner, run)).toMatchObject({ done: true, tasks: [] });
  });

  it("orders each phase by how the templates fared on similar data", async () => {
    const planner = exploiter();
    const run = await throughBaseline(planner);
    run.priors = {
      knn: { tried: 10, kept: 9, meanGain: 0.02, runs: 5 },
      linear: { tried: 10, kept: 0, meanGain: null, runs: 5 },
    };
    const models = [];
    for (let i = 0; i < 5; i++) models.push((await advance(planner, run, "rejected")).templateId);
    expect(models).toEqual(["knn", "lightgbm", "random_forest", "extra_trees", "linear"]);
  });

  it("averages the best pipelines of the top three model families", async () => {
    const { run } = await simulate(exploiter(), () => true);
    const ensemble = run.steps.find((s) => s.templateId === "ensemble");
    const id = (templateId: string) => run.steps.find((s) => s.templateId === templateId)?.id;
    // every step scores better than the one before: knn (the last family, improved by the
    // feature and tuning steps since, the ensemble's parent), then extra trees, random forest
    expect(ensemble?.params.from_steps).toEqual([ensemble?.parent, id("extra_trees"), id("random_forest")]);
    const change = ensemble?.params.change as { model: string; members: { model: string }[] };
    expect(change.model).toBe("ensemble");
    expect(change.members.map((m) => m.model)).toEqual(["knn", "extra_trees", "random_forest"]);
  });
});

describe("explore and exploit", () => {
  const laterShare = (run: RunView) => {
    const later = run.steps.filter((s) => ![...SETUP_KINDS, "baseline", "model", "final"].includes(s.kind));
    return later.filter((s) => s.kind === "explore").length / later.length;
  };

  it.each([0, 0.3, 0.6, 1])("gives exploration its share of the steps (%s)", async (share) => {
    const run = await simulateUpto(share, 30);
    const kinds = run.steps.map((s) => s.kind);
    expect(kinds.slice(0, 5)).toEqual([...SETUP_KINDS, "baseline"]);
    const firstExplore = kinds.includes("explore") ? kinds.indexOf("explore") : kinds.length;
    expect(kinds.slice(firstExplore), "every model family is compared before exploring").not.toContain(
      "model",
    );
    const measured = laterShare(run);
    if (share === 0 || share === 1) expect(measured).toBe(share);
    else {
      // the bandit moves the share by the kept rates, within a factor of two
      expect(measured).toBeGreaterThanOrEqual(share / 2 - 0.05);
      expect(measured).toBeLessThanOrEqual(Math.min(0.95, share * 2) + 0.05);
    }
  });

  it("samples a model's space a bounded number of times, then moves on", async () => {
    const run = await simulateUpto(1, 60);
    const samples = run.steps.filter((s) => s.kind === "explore");
    const models = new Set(samples.map((s) => s.params.model));
    expect(models.size).toBe(1);
    // prompts/tabular/explore.toml: about ten samples per parameter of the model's space
    const maxTrials: Record<string, number> = {
      lightgbm: 70,
      random_forest: 30,
      extra_trees: 30,
      knn: 20,
      linear: 10,
    };
    expect(samples).toHaveLength(maxTrials[String(samples[0]?.params.model)]!);
    expect(run.steps.at(-1)?.kind, "the rest of the budget goes to the other hypotheses").not.toBe("explore");
  });

  it("takes this planner's share when it has one, else the run's", async () => {
    const runs = await simulateUpto(0, 30, new Planner(TEMPLATES), 1);
    expect(laterShare(runs)).toBe(1);
    const own = await simulateUpto(0, 30, new Planner(TEMPLATES, 0), 1);
    expect(laterShare(own)).toBe(0);
  });

  it("passes the earlier trials to each Bayesian sample, which builds on a kept model", async () => {
    const run = await simulateUpto(1, 40);
    const samples = run.steps.filter((s) => s.kind === "explore");
    expect(samples.length).toBeGreaterThanOrEqual(10);
    const byId = new Map(run.steps.map((s) => [s.id, s]));
    const model = samples[0]?.params.model;
    samples.forEach((s, i) => {
      expect(byId.get(s.parent ?? -1)?.verdict).toBe("accepted");
      expect(s.params).toMatchObject({
        model,
        trial: i + 1,
        pending: [],
        higher_is_better: true,
      });
      const earlier = samples
        .slice(0, i)
        .map((e) => ({ params: e.params.sampled, score: e.metrics?.mean ?? null }));
      expect(s.params.trials).toEqual(earlier);
    });
  });

  it("stops sampling a model once the kernel says its space is exhausted", async () => {
    const planner = new Planner(TEMPLATES, 1);
    const run = await simulateUpto(1, 20);
    run.stepsLeft = 20;
    const task = await nextTask(planner, run);
    expect(task.kind).toBe("explore");
    const failed = record(run, task, "failed", null);
    failed.error = "SearchExhausted: every sample of extra_trees parameters was tried already";
    for (let i = 0; i < 10; i++) {
      const next = await nextTask(planner, run);
      expect(next.kind).not.toBe("explore");
      record(run, next, next.judged ? "rejected" : "done", next.judged ? metrics(0.5) : null);
      if (next.kind === "final") break;
    }
  });

  it("is reproducible", async () => {
    const [first, second] = [await simulateUpto(0.5, 40), await simulateUpto(0.5, 40)];
    expect(first.steps.map((s) => s.params)).toEqual(second.steps.map((s) => s.params));
  });
});

describe("the refit reserve", () => {
  const withBest = (duration: number, fitTime: number, foldJobs = 1) =>
    view({
      best: 4,
      steps: [
        {
          ...summary(
            4,
            { templateId: "lightgbm", kind: "model", hypothesis: "h", params: {}, judged: true, parent: 3 },
            "accepted",
          ),
          metrics: { ...metrics(0.8), fitTimeS: fitTime, foldJobs },
          durationS: duration,
        },
      ],
    });

  it("counts folds that ran two at a time as sequential work", () => {
    expect(refitReserveS(withBest(4, 3))).toBe(1.5 * 4 + 5); // folds in turn: the step's time
    expect(refitReserveS(withBest(2, 3.6, 2))).toBe(1.5 * 3.6 + 5); // two at a time: the summed fits
    // a step slowed by joblib starting its workers: the fits, not the one-off wait
    expect(refitReserveS(withBest(9, 3.6, 2))).toBe(1.5 * 3.6 + 5);
    expect(refitReserveS(view())).toBe(0);
  });
});

describe("parallel branches: the planner sees the running tasks", () => {
  it("keeps set-up steps waiting for the running ones", async () => {
    const planner = exploiter();
    const run = view();
    await advance(planner, run); // setup done; the profile is next
    run.running = [await nextTask(planner, run)];
    const reply = await plan(planner, run);
    expect(reply.wait, "the guard needs the profile: nothing starts beside it").toBe(true);
    expect(reply.tasks).toEqual([]);
  });

  it("starts judged steps beside running ones, with other hypotheses", async () => {
    const planner = exploiter();
    const run = await throughBaseline(planner);
    const first = await nextTask(planner, run);
    run.running = [first];
    const second = await nextTask(planner, run);
    expect(second.judged).toBe(true);
    expect(second.parent).toBe(run.bestStep);
    expect(key(second)).not.toBe(key(first));
    run.running.push(second);
    const third = await nextTask(planner, run);
    expect(run.running.map(key)).not.toContain(key(third));
  });

  it("starts nothing beside a running baseline", async () => {
    const planner = exploiter();
    const run = view();
    for (const _ of SETUP_KINDS) await advance(planner, run);
    run.running = [await nextTask(planner, run)];
    expect((await plan(planner, run)).wait, "model families need the baseline's score as their parent").toBe(
      true,
    );
  });

  it("keeps the final refit waiting for the running steps", async () => {
    const planner = exploiter();
    const run = await throughBaseline(planner);
    run.running = [await nextTask(planner, run)];
    run.stepsLeft = 1;
    expect(await plan(planner, run)).toMatchObject({ wait: true, tasks: [] });
    run.running = [];
    expect((await nextTask(planner, run)).kind).toBe("final");
  });

  it("gives parallel Bayesian samples their own trial numbers, hence their own seeds", async () => {
    const run = await simulateUpto(1, 12);
    run.stepsLeft = 20;
    const explorer = new Planner(TEMPLATES, 1);
    const first = await nextTask(explorer, run);
    expect(first.kind).toBe("explore");
    run.running = [first];
    const second = await nextTask(explorer, run);
    expect(second.kind).toBe("explore");
    expect(second.params.trial).toBe((first.params.trial as number) + 1);
    expect(second.params.trials).toEqual(first.params.trials);
  });
});

describe("big and wide tables", () => {
  const big = (rows: number, columns: number) => ({
    rows,
    columns: Object.fromEntries(
      Array.from({ length: columns }, (_, i) => [
        `x${i}`,
        { kind: "numeric", missing: 0, unique: 50, skew: 0 },
      ]),
    ),
    suspicious: {},
    target: { classes: { "0": rows / 2, "1": rows / 2 }, majority: 0.5 },
  });

  async function models(profile: Record<string, unknown>, timeLeft: number): Promise<string[]> {
    const planner = exploiter();
    const run = view({ profile, timeLeft: 10_000 });
    for (let i = 0; i < 5; i++) await advance(planner, run);
    run.timeLeftS = timeLeft;
    const tried: string[] = [];
    for (
      let task = await nextTask(planner, run);
      task.kind === "model";
      task = await nextTask(planner, run)
    ) {
      tried.push(task.templateId);
      record(run, task, "rejected", metrics(0.5));
    }
    return tried;
  }

  it("skips the slow models when the budget is short, on big or wide tables only", async () => {
    expect(await models(big(50_000, 10), 200)).toEqual(["linear", "lightgbm"]);
    expect(await models(big(1_000, 150), 200)).toEqual(["linear", "lightgbm"]);
    expect(await models(big(50_000, 10), 2_000)).toEqual([
      "linear",
      "lightgbm",
      "random_forest",
      "extra_trees",
    ]);
    expect(await models(big(3_000, 10), 200)).toEqual([
      "linear",
      "lightgbm",
      "random_forest",
      "extra_trees",
      "knn",
    ]);
  });
});

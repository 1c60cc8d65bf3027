/**
 * The planner: the next minimal subtask, from the templates that apply to the run so far.
 * Offline it is a deterministic policy; the LLM planner extends this class and falls back
 * on `handle` for everything its model does not plan.
 */
import {
  type Agent,
  type Plan,
  type PlanRequest,
  priorRate,
  type RunView,
  refitReserveS,
  type StepSummary,
  type Subtask,
} from "../messages.ts";
import { paramsKey } from "../templates/python.ts";
import { PHASES } from "../templates/schema.ts";
import type { Template } from "../templates/types.ts";

export { PHASES };

/** Always before any exploration: the set-up, the baseline and every model family. */
const MANDATORY = new Set<string>(PHASES.slice(0, PHASES.indexOf("model") + 1));
const phaseIndex = (phase: string) => {
  const i = PHASES.indexOf(phase as (typeof PHASES)[number]);
  return i < 0 ? PHASES.length : i;
};

/** The planner was given no template of kind "final": no run could end with a model. */
export class NoFinalTemplate extends Error {
  override name = "NoFinalTemplate";
}

/**
 * Offline policy over the templates, in phase order; each (template, parameters) once.
 *
 * Once the model families are compared, each step either exploits (the next feature,
 * tuning or ensemble hypothesis on the best branch) or explores (a Bayesian parameter
 * sample): exploration gets its share of these steps, adapted by how often each kind of
 * step has been kept. The final refit is planned early enough to fit in the budget, and
 * always once a model exists.
 */
export class Planner implements Agent<"planner"> {
  protected readonly templates: readonly Template[];
  private readonly final: Template;
  private readonly phaseOfTemplate: Map<string, string>;

  /**
   * `exploreShare`, when given, is this planner's share of exploration; otherwise each
   * run's own (it travels with the run, so a planner serving many runs needs no setting).
   */
  constructor(
    templates: readonly Template[],
    private readonly exploreShare?: number,
  ) {
    this.templates = [...templates].sort((a, b) => phaseIndex(a.phase) - phaseIndex(b.phase));
    const final = this.templates.find((t) => t.kind === "final");
    if (!final) throw new NoFinalTemplate("the planner needs a template of kind final (the refit)");
    this.final = final;
    this.phaseOfTemplate = new Map(this.templates.map((t) => [t.id, t.phase]));
  }

  async handle(request: PlanRequest): Promise<Plan> {
    return this.plan(request.run);
  }

  protected plan(run: RunView): Plan {
    if (run.steps.some((s) => s.kind === "final")) return done("the final model is saved");
    const final = this.finalTask(run);
    if (final !== null && mustFinish(run)) {
      const why =
        run.stepsLeft <= 1
          ? "step limit: room for the final refit only"
          : "budget: time for the final refit only";
      return besideRunning(run, plan([final], why));
    }
    const exploit = this.next(run, false);
    const explore = this.baseShare(run) > 0 ? this.next(run, true) : null;
    if (exploit !== null && (explore === null || exploit.mandatory || !this.exploreDue(run))) {
      return besideRunning(run, plan([exploit.task]));
    }
    if (explore !== null) return besideRunning(run, plan([explore.task]));
    if (run.running.length > 0) return wait("what comes next depends on the running steps");
    if (final !== null) return plan([final], "every applicable hypothesis was tested");
    return done("no step applies: an earlier set-up step failed");
  }

  /** The first untried (template, parameters) of the exploit or the explore arm. */
  private next(run: RunView, explore: boolean): { task: Subtask; mandatory: boolean } | null {
    const tried = new Set([...run.steps, ...run.running].map((s) => taskKey(s.templateId, s.params)));
    for (const template of ordered(this.templates, run)) {
      if (template.kind === "final" || (template.phase === "explore") !== explore) continue;
      const params = template.options(run).find((p) => !tried.has(taskKey(template.id, p)));
      if (params !== undefined) {
        return {
          task: template.task(params, template.parentFor(run)),
          mandatory: MANDATORY.has(template.phase),
        };
      }
    }
    return null;
  }

  baseShare(run: RunView): number {
    return this.exploreShare ?? run.options.exploreShare;
  }

  /** The exploration share, moved towards the arm whose steps have been kept more often. */
  share(run: RunView): number {
    const base = this.baseShare(run);
    if (base === 0 || base === 1) return base;
    const { explore, exploit } = this.arms(run);
    const rate = (steps: StepSummary[]) =>
      (steps.filter((s) => s.verdict === "accepted").length + 1) / (steps.length + 2);
    const adapted = (base * 2 * rate(explore)) / (rate(explore) + rate(exploit));
    return Math.min(0.95, Math.max(0.05, adapted));
  }

  /** Counted in steps, not seconds: wall times vary, and the same seed must give the same run. */
  private exploreDue(run: RunView): boolean {
    if (this.baseShare(run) >= 1) return true;
    const arms = this.arms(run);
    if (arms.explore.length === 0 && arms.exploit.length === 0) return false; // cheap, informative exploitation first
    // the running steps count too, or parallel branches would all pick the same arm
    const running = run.running.filter((t) => this.phaseOf(t) === "explore").length;
    const explore = arms.explore.length + running;
    const exploit = arms.exploit.length + run.running.length - running;
    return explore / (explore + exploit) < this.share(run);
  }

  /** Judged steps after the mandatory phases, by arm. */
  private arms(run: RunView): { explore: StepSummary[]; exploit: StepSummary[] } {
    const later = run.steps.filter((s) => !MANDATORY.has(this.phaseOf(s)) && this.phaseOf(s) !== "final");
    return {
      explore: later.filter((s) => this.phaseOf(s) === "explore"),
      exploit: later.filter((s) => this.phaseOf(s) !== "explore"),
    };
  }

  /** A step's phase: its template's, or its kind for steps no template made (a question's subtasks). */
  private phaseOf(step: { templateId: string; kind: string }): string {
    return this.phaseOfTemplate.get(step.templateId) ?? step.kind;
  }

  private finalTask(run: RunView): Subtask | null {
    const params = this.final.options(run)[0];
    return params !== undefined && run.bestStep !== null ? this.final.task(params, run.bestStep) : null;
  }
}

/** One step left, or too little time for the refit after one more step like the latest ones. */
function mustFinish(run: RunView): boolean {
  if (run.stepsLeft <= 1) return true;
  const judged = run.steps.filter((s) => s.metrics !== null);
  if (judged.length === 0) return false;
  // the median of the latest three: one step slowed by a one-off cost does not end the run
  const nextStep = median(judged.slice(-3).map((s) => s.durationS));
  return run.timeLeftS < refitReserveS(run) + nextStep;
}

/**
 * A step may start while others run only if it and they are judged hypotheses on an
 * established best pipeline: set-up steps, subtasks and the final refit need every step
 * before them to have finished.
 */
function besideRunning(run: RunView, next: Plan): Plan {
  const independent = [...next.tasks, ...run.running].every((t) => t.judged) && run.bestStep !== null;
  return run.running.length === 0 || independent
    ? next
    : wait("the next step needs the running ones to finish");
}

/**
 * Within each phase, the templates that paid off on similar data in earlier runs first;
 * without that knowledge, the library's order.
 */
export function ordered(templates: readonly Template[], run: RunView): readonly Template[] {
  if (Object.keys(run.priors).length === 0) return templates;
  const rate = (t: Template) => {
    const prior = run.priors[t.id];
    return prior ? priorRate(prior) : 0.5;
  };
  return templates
    .map((template, i) => ({ template, i }))
    .sort(
      (a, b) =>
        phaseIndex(a.template.phase) - phaseIndex(b.template.phase) ||
        rate(b.template) - rate(a.template) ||
        a.i - b.i,
    )
    .map(({ template }) => template);
}

const taskKey = (templateId: string, params: Subtask["params"]) => `${templateId} ${paramsKey(params)}`;

const plan = (tasks: Subtask[], reason = ""): Plan => ({ tasks, done: false, wait: false, reason });
const done = (reason: string): Plan => ({ tasks: [], done: true, wait: false, reason });
const wait = (reason: string): Plan => ({ tasks: [], done: false, wait: true, reason });

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

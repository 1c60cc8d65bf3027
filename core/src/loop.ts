/**
 * The run's memory: every step, the best one, and the cells of the winning path. The
 * controller fills it; a resumed run rebuilds it from provenance; the report reads it.
 */
import {
  type Execution,
  gainOver,
  type Json,
  type RunOptions,
  type RunView,
  records,
  type StepSummary,
} from "./messages.ts";

/** The cell that makes a kept candidate the best pipeline: run after an accepted step. */
export const ACCEPT_CELL = "spec = candidate_spec";

export class Loop {
  readonly cells = new Map<number, string>(); // step id -> code that ran successfully
  readonly executions = new Map<number, Execution>(); // step id -> its last run
  stopReason = "";

  constructor(readonly view: RunView) {}

  static fresh(options: RunOptions, budgetS: number, maxSteps: number): Loop {
    return new Loop({
      task: options.task,
      metric: options.metric,
      profile: {},
      steps: [],
      bestStep: null,
      timeLeftS: budgetS,
      stepsLeft: maxSteps,
      options,
      priors: {},
      running: [],
    });
  }

  byId(id: number | null | undefined): StepSummary | undefined {
    return id == null ? undefined : this.view.steps.find((s) => s.id === id);
  }

  get best(): StepSummary | undefined {
    return this.byId(this.view.bestStep);
  }

  /** Take in a finished step: a kept one extends the winning path, an accepted one leads. */
  add(step: StepSummary, execution: Execution, code: string): void {
    this.view.steps.push(step);
    this.executions.set(step.id, execution);
    if (step.verdict === "accepted" || step.verdict === "done") this.cells.set(step.id, code);
    if (step.verdict === "accepted" && this.beatsBest(step)) this.view.bestStep = step.id;
    if (step.kind === "profile" && step.verdict === "done") {
      this.view.profile = records(execution, "profile").at(-1) ?? {};
    }
  }

  /** A step kept on a branch from an older step leads only if it beats the best so far. */
  private beatsBest(step: StepSummary): boolean {
    const best = this.best;
    if (!best || step.parent === best.id || !best.metrics || !step.metrics) return true;
    return gainOver(step.metrics, best.metrics) > 0;
  }

  /** The last record of one kind from the finished step of one kind (`validation`, `final`). */
  record(kind: string, recordKind = kind): Record<string, Json> {
    const step = this.view.steps.find((s) => s.kind === kind && s.verdict === "done");
    const execution = step && this.executions.get(step.id);
    return ((execution ? records(execution, recordKind).at(-1) : undefined) as Record<string, Json>) ?? {};
  }

  /**
   * The kept steps from the first one to `stepId`, following parents, with their code.
   * Each accepted step's code ends with its accept line: replaying the cells in a fresh
   * kernel rebuilds the state of `stepId`.
   */
  chain(stepId: number | null): { step: StepSummary; code: string }[] {
    const path: { step: StepSummary; code: string }[] = [];
    for (let step = this.byId(stepId); step; step = this.byId(step.parent)) {
      const code = this.cells.get(step.id);
      if (code !== undefined) path.push({ step, code: replayed(code, step.verdict === "accepted") });
    }
    return path.reverse();
  }

  /** The chain that ends in the final refit (or, before it, in the best step). */
  winningPath(): { step: StepSummary; code: string }[] {
    const final = this.view.steps.find((s) => s.kind === "final" && this.cells.has(s.id));
    return this.chain(final ? final.id : this.view.bestStep);
  }
}

/** A kept step's cell as replay runs it: an accepted one ends with its accept line. */
export function replayed(code: string, accepted: boolean): string {
  return code.trimEnd() + (accepted ? `\n${ACCEPT_CELL}` : "");
}

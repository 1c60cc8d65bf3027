/**
 * An experiment template as the agents use it, once loaded from its file under `prompts/`
 * and validated. The planner asks `options(run)`; the coder asks `render(task)`.
 */
import type { Params, RunView, Subtask } from "../messages.ts";

export interface Template {
  readonly id: string;
  /** setup, profile, guard, validation, baseline, model, feature, tuning, ensemble, explore, final, analysis */
  readonly kind: string;
  /** the planner's phase: templates run phase by phase */
  readonly phase: string;
  /** compared with its parent on the same folds, kept only if it helps */
  readonly judged: boolean;
  readonly tags: readonly string[];
  /** the parameter sets the template can be tried with now (none: it does not apply) */
  options(run: RunView): Params[];
  /** the step this task builds on: the best step (judged), the previous one (set-up), or the template's own rule */
  parentFor(run: RunView): number | null;
  /** a task with its hypothesis filled from the parameters */
  task(params: Params, parent: number | null): Subtask;
  /** the Python cell: the code skeleton with each parameter written as a Python literal */
  render(task: Subtask): string;
  /** the prompt skeleton for LLM mode, filled with the task and the kernel state */
  renderPrompt(task: Subtask, state: string): string;
}

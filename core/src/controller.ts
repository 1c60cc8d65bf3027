/**
 * The meta-controller: plan -> code -> execute -> evaluate -> reflect, within a budget.
 *
 * It is the only part that knows the order of things. It reaches the agents only through
 * the bus and the kernels only through the Sandbox interface, so the same loop runs with
 * agents in this process or as services, on local or containerised kernels.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Checkpoint, Checkpoint as CheckpointSchema, type Sandbox } from "@dsassist/sandboxes";
import type { Bus } from "./bus/bus.ts";
import { ACCEPT_CELL, type Loop, replayed } from "./loop.ts";
import {
  type Attempt,
  type Cell,
  type EvaluateRequest,
  Evaluation,
  type Execution,
  history,
  type Params,
  Recheck,
  records,
  refitReserveS,
  type StepSummary,
  type Subtask,
} from "./messages.ts";

/** Scores a near-tie again: candidate and parent on freshly shuffled folds (toolkit.recheck). */
const RECHECK_CELL =
  "recheck_record = recheck(candidate_spec, spec, columns, X, y, VALIDATION, METRIC, TASK, SEED)";
/** The largest share of the budget one cell may take. */
const STEP_SHARE = 0.3;

/** What the live view shows after each step. */
export interface Progress {
  step: StepSummary;
  best: StepSummary | undefined;
  elapsedS: number;
  timeLeftS: number;
}

/** Where finished steps go: the run's provenance (a port; Kùzu behind it). */
export interface StepRecorder {
  recordStep(step: StepSummary, attempts: Attempt[], startedAt: string): Promise<unknown>;
}

export interface ControllerOptions {
  bus: Bus;
  /** one kernel per parallel branch */
  sandboxes: Sandbox[];
  recorder: StepRecorder;
  /** the run folder: step notes and checkpoint manifests go there, out of the kernels' reach */
  runDir: string;
  budgetS: number;
  maxSteps: number;
  cellTimeoutS: number;
  maxFixAttempts: number;
  onStep?: (progress: Progress) => void;
  /** seconds a resumed run has already spent */
  spentS?: number;
}

/** One kernel of the run, and the step whose state it holds. */
interface Branch {
  sandbox: Sandbox;
  head: number | null;
}

/** What a step's kernel work produced: every attempt, the verdict, the state saved after it. */
interface Outcome {
  attempts: Attempt[];
  evaluation: Evaluation;
  checkpoint?: Checkpoint;
}

type Running = Promise<{ step: StepSummary; branch: Branch; task: Subtask }>;

export class Controller {
  private readonly branches: Branch[];
  private readonly started: number;
  private stopping = false;
  /** the recording of finished steps, in order (see `record`) */
  private recording: Promise<void> = Promise.resolve();
  private recordFailure: unknown = null;
  private interrupt: () => void = () => {};
  private readonly interrupted = new Promise<"interrupted">((resolve) => {
    this.interrupt = () => resolve("interrupted");
  });

  constructor(private readonly o: ControllerOptions) {
    this.branches = o.sandboxes.map((sandbox) => ({ sandbox, head: null }));
    this.started = performance.now() / 1000 - (o.spentS ?? 0);
  }

  timeLeft(): number {
    return this.o.budgetS - (performance.now() / 1000 - this.started);
  }

  /** Stop now (Ctrl-C): steps in flight record nothing; a resume redoes them. */
  stop(): void {
    this.stopping = true;
    this.interrupt();
  }

  async run(loop: Loop): Promise<Loop> {
    let nextId = Math.max(-1, ...loop.view.steps.map((s) => s.id)) + 1;
    const free = [...this.branches];
    const running = new Map<Running, Subtask>();
    try {
      while (!this.stopping) {
        // plan only with a branch to run on: the plan then reflects every finished step
        if (free.length === 0) {
          await this.finished(loop, running, free);
          continue;
        }
        const stop = this.refresh(loop, [...running.values()]);
        const plan = stop ? { tasks: [], done: true, wait: false, reason: stop } : await this.plan(loop);
        if (running.size > 0 && (plan.wait || plan.done || plan.tasks.length === 0)) {
          await this.finished(loop, running, free);
          continue;
        }
        if (plan.done || plan.tasks.length === 0) {
          loop.stopReason = loop.stopReason || plan.reason;
          return loop;
        }
        if (plan.tasks[0]!.kind === "final") loop.stopReason = plan.reason; // why the run is ending
        for (const task of plan.tasks) {
          while (free.length === 0 && !this.stopping) await this.finished(loop, running, free);
          if (this.stopping) break;
          // a kernel that already holds the parent's state saves a restore
          const branch = free.find((b) => b.head === task.parent) ?? free[0]!;
          free.splice(free.indexOf(branch), 1);
          const id = nextId++;
          const started = this.step(loop, task, id, branch).then((step) => ({ step, branch, task }));
          started.catch(() => {}); // observed by `finished`; others may fail while one is reported
          running.set(started, task);
        }
      }
      loop.stopReason = "interrupted by the user";
      return loop;
    } finally {
      this.stopping = true; // a step still running records nothing
      await this.recorded();
    }
  }

  /** Every finished step recorded; a failure to record ends the run here. */
  private async recorded(): Promise<void> {
    await this.recording;
    if (this.recordFailure !== null) throw this.recordFailure;
  }

  private async plan(loop: Loop) {
    return this.o.bus.request("planner", { run: structuredClone(loop.view) });
  }

  /** Bring the planner's view up to date; the reason to stop, if the budget is spent.
   * With a model to save, a spent budget still lets the planner plan the refit. */
  private refresh(loop: Loop, running: Subtask[]): string {
    const view = loop.view;
    view.running = running;
    view.timeLeftS = this.timeLeft();
    view.stepsLeft = this.o.maxSteps - view.steps.length - running.length;
    const refitDue = loop.best !== undefined && !view.steps.some((s) => s.kind === "final");
    if (refitDue) return "";
    if (view.timeLeftS <= 0) return "budget spent";
    return view.stepsLeft <= 0 ? "step limit reached" : "";
  }

  /** Wait for a running step to finish; its branch is free again. */
  private async finished(loop: Loop, running: Map<Running, Subtask>, free: Branch[]): Promise<void> {
    const first = [...running.keys()].map((p) => p.then((result) => ({ p, result })));
    const winner = await Promise.race([...first, this.interrupted]);
    if (winner === "interrupted") return;
    if (this.recordFailure !== null) throw this.recordFailure;
    running.delete(winner.p);
    free.push(winner.result.branch);
    const elapsedS = performance.now() / 1000 - this.started;
    this.o.onStep?.({ step: winner.result.step, best: loop.best, elapsedS, timeLeftS: this.timeLeft() });
  }

  /** One hypothesis: code it, run it, fix it in place if it fails, judge it, learn from it. */
  private async step(loop: Loop, task: Subtask, stepId: number, branch: Branch): Promise<StepSummary> {
    const startedAt = new Date().toISOString();
    const t0 = performance.now();
    const outcome = await this.work(loop, task, stepId, branch);
    const kept = outcome.evaluation.verdict === "accepted" || outcome.evaluation.verdict === "done";
    if (kept) branch.head = stepId;
    return this.record(loop, task, stepId, outcome, startedAt, (performance.now() - t0) / 1000);
  }

  /** The step's work on its kernel, up to the checkpoint of the state it leaves. */
  private async work(loop: Loop, task: Subtask, stepId: number, branch: Branch): Promise<Outcome> {
    const parent = loop.byId(task.parent);
    const replay = loop.chain(task.parent).map((link) => link.code);
    if (parent && parent.id !== branch.head) await this.branchFrom(branch, parent.id);
    const sandbox = branch.sandbox;
    const state = await sandbox.state();
    let cell: Cell = await this.o.bus.request("coder", {
      kind: "code",
      task,
      state,
      stepId,
      history: history(loop.view),
    });
    if (cell.gaveUp) {
      const feedback = `no cell was written (${cell.rule})`;
      const nothing: Attempt = { code: "", execution: emptyExecution(), feedback, fixRule: "" };
      return { attempts: [nothing], evaluation: { verdict: "failed", metrics: null, gain: null, feedback } };
    }
    const attempts: Attempt[] = [];
    let evaluation: Evaluation;
    for (;;) {
      const execution = await sandbox.execute(cell.code, { timeoutS: this.timeout(task, loop) });
      evaluation = await this.evaluate({
        kind: "evaluate",
        task,
        execution,
        code: cell.code,
        stepId,
        parent: parent && task.judged ? parent.metrics : null,
        attempt: attempts.length,
        maxAttempts: this.o.maxFixAttempts,
        canRecheck: this.canRecheck(execution, loop),
        recheck: null,
      });
      attempts.push({ code: cell.code, execution, feedback: evaluation.feedback, fixRule: cell.rule });
      if (evaluation.verdict !== "retry") break;
      cell = await this.o.bus.request("coder", {
        kind: "fix",
        task,
        code: cell.code,
        execution,
        feedback: evaluation.feedback,
        attempt: attempts.length,
        state: await sandbox.state(),
        tried: attempts.map((a) => a.code),
        stepId,
      });
      if (cell.gaveUp) {
        evaluation = { ...evaluation, verdict: "failed" };
        break;
      }
    }
    const last = attempts.at(-1)!;
    if (evaluation.verdict === "recheck") {
      evaluation = await this.recheck(sandbox, task, last.execution, parent, loop);
      last.feedback = evaluation.feedback;
    }
    // a failed or rejected step leaves no state that anything builds on: the kernel's last
    // checkpoint (its parent's) stays the one a dead kernel comes back to
    if (evaluation.verdict === "failed" || evaluation.verdict === "rejected") return { attempts, evaluation };
    const accepted = evaluation.verdict === "accepted";
    if (accepted) await sandbox.execute(ACCEPT_CELL);
    if (accepted || evaluation.verdict === "done") replay.push(replayed(last.code, accepted));
    const checkpoint = await sandbox.checkpoint(`step-${pad(stepId)}`, replay);
    return { attempts, evaluation, checkpoint };
  }

  private async evaluate(request: EvaluateRequest): Promise<Evaluation> {
    return Evaluation.parse(await this.o.bus.request("evaluator", request));
  }

  /** Scoring candidate and parent again costs about twice the step: only if that fits. */
  private canRecheck(execution: Execution, loop: Loop): boolean {
    const fit = Number(records(execution, "metrics").at(-1)?.fit_time_s ?? 0);
    return this.timeLeft() - refitReserveS(loop.view) > 3 * fit + 1;
  }

  /** Decide a near-tie on new folds; if that cell fails, the tie stays unproven. */
  private async recheck(
    sandbox: Sandbox,
    task: Subtask,
    execution: Execution,
    parent: StepSummary | undefined,
    loop: Loop,
  ): Promise<Evaluation> {
    const rerun = await sandbox.execute(RECHECK_CELL, { timeoutS: this.timeout(task, loop) });
    const record = records(rerun, "recheck").at(-1);
    const parsed = Recheck.safeParse(record);
    const why = `the recheck failed: ${rerun.error ? `${rerun.error.name}: ${rerun.error.value}` : "no record"}`;
    const recheck = rerun.ok && parsed.success ? parsed.data : { candidate: [], parent: [], why };
    return this.evaluate({
      kind: "evaluate",
      task,
      execution,
      code: "",
      stepId: null,
      parent: parent?.metrics ?? null,
      attempt: 0,
      maxAttempts: 0,
      canRecheck: false,
      recheck,
    });
  }

  /**
   * No experiment may eat the budget, nor the time kept for the final refit: a slow one is
   * cut off and named Timeout. The final refit itself is not cut short by the budget: a run
   * that ends a little late with its model beats one that ends on time without it.
   */
  private timeout(task: Subtask, loop: Loop): number {
    const { cellTimeoutS, budgetS } = this.o;
    if (task.kind === "final") return cellTimeoutS;
    const cap = Math.max(10, STEP_SHARE * budgetS);
    return Math.max(1, Math.min(cellTimeoutS, cap, this.timeLeft() - refitReserveS(loop.view)));
  }

  /** Continue from an earlier step: its checkpoint, restored into a pooled kernel. */
  private async branchFrom(branch: Branch, stepId: number): Promise<void> {
    const path = join(this.o.runDir, "checkpoints", `step-${pad(stepId)}.json`);
    const checkpoint = CheckpointSchema.parse(JSON.parse(await readFile(path, "utf8")));
    await branch.sandbox.branch(checkpoint);
    branch.head = stepId;
  }

  private async record(
    loop: Loop,
    task: Subtask,
    stepId: number,
    outcome: Outcome,
    startedAt: string,
    durationS: number,
  ): Promise<StepSummary> {
    const { attempts, evaluation } = outcome;
    const last = attempts.at(-1)!;
    // a cell may publish what it chose at run time (a sampled parameter set): it is part of the step
    const chosen = (records(last.execution, "params").at(-1) ?? {}) as Params;
    const step: StepSummary = {
      id: stepId,
      parent: task.parent,
      templateId: task.templateId,
      kind: task.kind,
      hypothesis: task.hypothesis,
      params: { ...task.params, ...chosen },
      verdict: evaluation.verdict,
      metrics: evaluation.metrics,
      gain: evaluation.gain,
      durationS,
      attempts: attempts.length,
      error: evaluation.verdict === "failed" ? evaluation.feedback : null,
      lesson: "",
    };
    if (this.stopping) return step; // the run ended while this step ran: a resume redoes it
    const parent = loop.byId(task.parent) ?? null;
    const reflection = await this.o.bus.request("reflector", { step, attempts, parent });
    if (this.stopping) return step;
    step.lesson = reflection.lesson;
    // the manifest first: a step planned from this one may branch from it at once
    if (outcome.checkpoint) await this.saveCheckpoint(outcome.checkpoint);
    loop.add(step, last.execution, last.code);
    // the note and the provenance record follow in order, off the loop's path: a step is done
    // once recorded, and a kill before that redoes it under the same id
    const note = join(this.o.runDir, "steps");
    this.recording = this.recording
      .then(() => writeNote(note, step, reflection.note))
      .then(async () => {
        await this.o.recorder.recordStep(step, attempts, startedAt);
      })
      .catch((error: unknown) => {
        this.recordFailure ??= error;
      });
    return step;
  }

  /**
   * Write a step's checkpoint manifest before the step is recorded as done. It lives in the
   * run folder, out of the kernel's reach; a resumed run branches from recorded steps only.
   */
  private async saveCheckpoint(checkpoint: Checkpoint): Promise<void> {
    const folder = join(this.o.runDir, "checkpoints");
    await mkdir(folder, { recursive: true });
    const tmp = join(folder, `.${checkpoint.label}.json.tmp`);
    await writeFile(tmp, JSON.stringify(checkpoint, null, 1));
    await rename(tmp, join(folder, `${checkpoint.label}.json`)); // a kill mid-write leaves the old state
  }
}

const pad = (id: number) => String(id).padStart(3, "0");

function emptyExecution(): Execution {
  return { ok: false, stdout: "", stderr: "", outputs: [], durationS: 0 };
}

async function writeNote(folder: string, step: StepSummary, note: string): Promise<void> {
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, `${pad(step.id)}-${step.templateId}.md`), note);
}

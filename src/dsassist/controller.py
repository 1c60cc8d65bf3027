"""The meta-controller: plan -> code -> execute -> evaluate -> reflect, within a budget."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from dsassist.bus import Bus
from dsassist.config import RunConfig
from dsassist.messages import (
    Attempt,
    Cell,
    CodeRequest,
    ErrorInfo,
    EvaluateRequest,
    Evaluation,
    Execution,
    FixRequest,
    Plan,
    PlanRequest,
    Recheck,
    Reflection,
    ReflectRequest,
    RunView,
    StepSummary,
    Task,
    Verdict,
)
from dsassist.sandbox import Executor, WorkerLost
from dsassist.sandbox.checkpoint import Checkpoint
from dsassist.store import MirroredStore
from dsassist.store.knowledge import summarize
from dsassist.store.provenance import now

ACCEPT_CELL = "spec = candidate_spec"
RECHECK_CELL = "recheck_record = recheck(candidate_spec, spec, columns, X, y, VALIDATION, METRIC, TASK, SEED)"
STEP_SHARE = 0.3  # the largest share of the budget one cell may take
Reply = TypeVar("Reply", bound=BaseModel)
WORKER_RETRIES = 2  # times a step starts again after the worker holding its kernel died


@dataclass
class Progress:
    """What the live view shows after each step."""

    step: StepSummary
    best: StepSummary | None
    elapsed_s: float
    time_left_s: float


@dataclass
class Loop:
    """The run's memory: every step, the best one, and the cells of the winning path."""

    view: RunView
    cells: dict[int, str] = field(default_factory=dict)  # step id -> code that ran successfully
    executions: dict[int, Execution] = field(default_factory=dict)  # step id -> its last run
    stop_reason: str = ""

    def by_id(self, step_id: int | None) -> StepSummary | None:
        return next((s for s in self.view.steps if s.id == step_id), None)

    @property
    def best(self) -> StepSummary | None:
        return self.by_id(self.view.best_step)

    def _beats_best(self, step: StepSummary) -> bool:
        """A step kept on a branch from an older step leads only if it beats the best so far."""
        best = self.best
        if best is None or step.parent == best.id or best.metrics is None or step.metrics is None:
            return True
        return step.metrics.gain_over(best.metrics) > 0

    def add(self, step: StepSummary, execution: Execution, code: str) -> None:
        """Take in a finished step: a kept one extends the winning path, an accepted one leads."""
        self.view.steps.append(step)
        self.executions[step.id] = execution
        if step.verdict in (Verdict.ACCEPTED, Verdict.DONE):
            self.cells[step.id] = code
        if step.verdict == Verdict.ACCEPTED and self._beats_best(step):
            self.view.best_step = step.id
        if step.kind == "profile" and step.verdict == Verdict.DONE:
            records = execution.records("profile")
            self.view.profile = records[-1] if records else {}


@dataclass
class Branch:
    """One kernel of the run, and the step whose state it holds."""

    sandbox: Executor
    head: int | None = None


@dataclass
class Outcome:
    """What a step's kernel work produced: every attempt, the verdict, the state saved after it."""

    attempts: list[Attempt]
    evaluation: Evaluation
    checkpoint: Checkpoint | None = None


class Controller:
    """Runs steps until the planner is done, the budget is spent or the steps run out.

    With several kernels, judged hypotheses run on parallel branches, each kernel restored
    from its step's parent checkpoint. Agent calls and records take turns under one lock:
    only the kernels' work overlaps.
    """

    def __init__(
        self,
        bus: Bus,
        sandboxes: list[Executor],
        store: MirroredStore,
        run_id: str,
        cfg: RunConfig,
        on_step: Callable[[Progress], None] | None = None,
        spent_s: float = 0.0,
    ) -> None:
        self.bus, self.store, self.run_id, self.cfg = bus, store, run_id, cfg
        self.branches = [Branch(sandbox) for sandbox in sandboxes]
        self.notes = cfg.out.resolve() / "steps"
        self.checkpoints = cfg.out.resolve() / "checkpoints"
        self.on_step = on_step or (lambda _: None)
        self.started = time.monotonic() - spent_s  # a resumed run has spent part of its budget
        self.lock = threading.RLock()
        self.stopping = threading.Event()  # set when the loop ends early: late steps record nothing

    def time_left(self) -> float:
        return self.cfg.budget_s - (time.monotonic() - self.started)

    def run(self, loop: Loop) -> Loop:
        ids = itertools.count(max((s.id for s in loop.view.steps), default=-1) + 1)
        free = list(self.branches)
        running: dict[Future[StepSummary], tuple[Task, Branch]] = {}
        pool = ThreadPoolExecutor(len(self.branches), thread_name_prefix="branch")
        try:
            while True:
                if not free:  # plan only with a branch to run on: the plan reflects every finished step
                    self._finished(loop, running, free)
                    continue
                with self.lock:
                    stop = self._refresh(loop, [task for task, _ in running.values()])
                    plan = Plan(done=True) if stop else self._ask("planner", PlanRequest(run=loop.view), Plan)
                if running and (stop or plan.wait or plan.done or not plan.tasks):
                    self._finished(loop, running, free)
                    continue
                if stop or plan.done or not plan.tasks:
                    loop.stop_reason = stop or loop.stop_reason or plan.reason
                    return loop
                if plan.tasks[0].kind == "final":  # why the run is ending: budget, or nothing left
                    loop.stop_reason = plan.reason
                for task in plan.tasks:
                    while not free:  # a planner may plan several tasks at once
                        self._finished(loop, running, free)
                    # a kernel that already holds the parent's state saves a restore
                    branch = next((b for b in free if b.head == task.parent), free[0])
                    free.remove(branch)
                    running[pool.submit(self.step, loop, task, next(ids), branch)] = (task, branch)
        finally:
            with self.lock:  # a step being recorded right now finishes first
                self.stopping.set()
            pool.shutdown(wait=not running, cancel_futures=True)

    def _refresh(self, loop: Loop, running: list[Task]) -> str:
        """Bring the planner's view up to date; the reason to stop, if the budget is spent.

        With a model to save, a spent budget still lets the planner plan the refit."""
        view = loop.view
        view.running = running
        view.time_left_s = self.time_left()
        view.steps_left = self.cfg.max_steps - len(view.steps) - len(running)
        refit_due = loop.best is not None and not any(s.kind == "final" for s in view.steps)
        if refit_due:
            return ""
        if view.time_left_s <= 0:
            return "budget spent"
        return "step limit reached" if view.steps_left <= 0 else ""

    def _finished(
        self, loop: Loop, running: dict[Future[StepSummary], tuple[Task, Branch]], free: list[Branch]
    ) -> None:
        """Wait for a running step to finish; its branch is free again."""
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            free.append(running.pop(future)[1])
            step = future.result()  # an error in a step ends the run here
            self.on_step(Progress(step, loop.best, time.monotonic() - self.started, self.time_left()))

    def _ask(self, role: str, message: BaseModel, reply: type[Reply]) -> Reply:
        with self.lock:
            answer = self.bus.request(role, message)
        assert isinstance(answer, reply)
        return answer

    def step(self, loop: Loop, task: Task, step_id: int, branch: Branch) -> StepSummary:
        """One hypothesis: code it, run it, fix it in place if it fails, judge it, learn from it.

        A worker that dies with the kernel starts the step again from its parent's
        checkpoint; each loss is recorded as an attempt."""
        started_at, t0 = now(), time.monotonic()
        lost: list[Attempt] = []
        while True:
            try:
                outcome = self._run(loop, task, step_id, branch)
                break
            except WorkerLost as exc:
                branch.head = None  # the new kernel holds nothing yet
                error = ErrorInfo(name="WorkerLost", value=str(exc))
                feedback = "the step starts again from its parent's checkpoint on a new worker"
                lost.append(Attempt(code="", execution=Execution(ok=False, error=error), feedback=feedback))
                if len(lost) > WORKER_RETRIES:
                    failed = Evaluation(verdict=Verdict.FAILED, feedback=f"the worker died {len(lost)} times")
                    outcome = Outcome([], failed)
                    break
        if lost and outcome.attempts:  # provenance links each loss to the attempt that replaced it
            retried = outcome.attempts[0].model_copy(update={"fix_rule": "retried on a new worker"})
            outcome.attempts[0] = retried
        outcome.attempts[:0] = lost
        kept = outcome.evaluation.verdict in (Verdict.ACCEPTED, Verdict.DONE)
        branch.head = step_id if kept else branch.head
        return self._record(loop, task, step_id, outcome, started_at, time.monotonic() - t0)

    def _run(self, loop: Loop, task: Task, step_id: int, branch: Branch) -> Outcome:
        """The step's work on its kernel, up to the checkpoint of the state it leaves."""
        with self.lock:
            parent = loop.by_id(task.parent)
            history = loop.view.history()
            replay = [code for _, code in chain(loop, task.parent)]
        if parent is not None and parent.id != branch.head:
            self._branch(branch, parent.id)
        sandbox = branch.sandbox
        request = CodeRequest(task=task, state=sandbox.state(), step_id=step_id, history=history)
        cell = self._ask("coder", request, Cell)
        if cell.gave_up:  # no cell to run: nothing was executed
            failed = Evaluation(verdict=Verdict.FAILED, feedback=f"no cell was written ({cell.rule})")
            nothing = Attempt(code="", execution=Execution(ok=False), feedback=failed.feedback)
            return Outcome([nothing], failed)
        attempts: list[Attempt] = []
        while True:
            execution = sandbox.execute(cell.code, timeout=self._timeout(task, loop.view))
            evaluation = self._ask(
                "evaluator",
                EvaluateRequest(
                    task=task,
                    execution=execution,
                    code=cell.code,
                    step_id=step_id,
                    parent=parent.metrics if parent and task.judged else None,
                    attempt=len(attempts),
                    max_attempts=self.cfg.max_fix_attempts,
                    can_recheck=self._can_recheck(execution, loop.view),
                ),
                Evaluation,
            )
            attempts.append(
                Attempt(code=cell.code, execution=execution, feedback=evaluation.feedback, fix_rule=cell.rule)
            )
            if evaluation.verdict != Verdict.RETRY:
                break
            fix = FixRequest(
                task=task,
                code=cell.code,
                execution=execution,
                feedback=evaluation.feedback,
                attempt=len(attempts),
                state=sandbox.state(),
                tried=[a.code for a in attempts],
                step_id=step_id,
            )
            cell = self._ask("coder", fix, Cell)
            if cell.gave_up:
                evaluation = evaluation.model_copy(update={"verdict": Verdict.FAILED})
                break
        if evaluation.verdict == Verdict.RECHECK:
            evaluation = self._recheck(sandbox, task, attempts[-1].execution, parent, loop.view)
            attempts[-1] = attempts[-1].model_copy(update={"feedback": evaluation.feedback})
        if evaluation.verdict == Verdict.FAILED:
            return Outcome(attempts, evaluation)
        accepted = evaluation.verdict == Verdict.ACCEPTED
        if accepted:
            sandbox.execute(ACCEPT_CELL)
        if evaluation.verdict in (Verdict.ACCEPTED, Verdict.DONE):
            replay.append(_replayed(attempts[-1].code, accepted))
        checkpoint = sandbox.checkpoint(f"step-{step_id:03d}", replay=replay)
        return Outcome(attempts, evaluation, checkpoint)

    def _can_recheck(self, execution: Execution, view: RunView) -> bool:
        """Scoring candidate and parent again costs about twice the step: only if that fits."""
        records = execution.records("metrics")
        fit_s = records[-1].get("fit_time_s", 0.0) if records else 0.0
        return self.time_left() - view.refit_reserve_s() > 3 * fit_s + 1.0

    def _recheck(
        self, sandbox: Executor, task: Task, execution: Execution, parent: StepSummary | None, view: RunView
    ) -> Evaluation:
        """Decide a near-tie on new folds; if that cell fails, the tie stays unproven."""
        rerun = sandbox.execute(RECHECK_CELL, timeout=self._timeout(task, view))
        records = rerun.records("recheck")
        recheck = (
            Recheck.model_validate(records[-1])
            if rerun.ok and records
            else Recheck(candidate=[], parent=[], why=f"the recheck failed: {rerun.error or 'no record'}")
        )
        request = EvaluateRequest(
            task=task, execution=execution, parent=parent.metrics if parent else None, recheck=recheck
        )
        return self._ask("evaluator", request, Evaluation)

    def _learn(self, loop: Loop) -> None:
        """Look up how each template fared on similar data in earlier runs, once the profile is
        known. The priors are recorded with the run: a resumed run plans as the original did,
        whatever ran since."""
        summary = summarize(loop.view.profile, loop.view.task) | {"metric": loop.view.metric}
        loop.view.priors = self.store.priors(summary, self.run_id)
        self.store.record_knowledge(self.run_id, summary, loop.view.priors)

    def _timeout(self, task: Task, view: RunView) -> float:
        """No experiment may eat the budget, nor the time kept for the final refit: a slow one
        is cut off and named Timeout.

        The final refit itself is not cut: a run that ends a little late with its model beats
        one that ends on time without it.
        """
        if task.kind == "final":
            return max(
                1.0, min(self.cfg.cell_timeout_s, max(self.time_left(), STEP_SHARE * self.cfg.budget_s))
            )
        cap = max(10.0, STEP_SHARE * self.cfg.budget_s)
        return max(1.0, min(self.cfg.cell_timeout_s, cap, self.time_left() - view.refit_reserve_s()))

    def _branch(self, branch: Branch, step_id: int) -> None:
        """Continue from an earlier step: its checkpoint, restored into a pooled kernel."""
        path = self.checkpoints / f"step-{step_id:03d}.json"
        branch.sandbox.branch(Checkpoint.model_validate_json(path.read_text()))
        branch.head = step_id

    def _save(self, checkpoint: Checkpoint) -> None:
        """Write a step's checkpoint manifest before the step is recorded as done.

        The manifest lives in the run folder, out of the kernel's reach; a resumed run
        branches from the checkpoints of recorded steps only.
        """
        folder = self.checkpoints
        folder.mkdir(exist_ok=True)
        tmp = folder / f".{checkpoint.label}.json.tmp"
        tmp.write_text(checkpoint.model_dump_json(indent=1))
        tmp.replace(folder / f"{checkpoint.label}.json")  # a kill mid-write leaves the old state

    def _record(
        self, loop: Loop, task: Task, step_id: int, outcome: Outcome, started_at: str, duration: float
    ) -> StepSummary:
        attempts, evaluation = outcome.attempts, outcome.evaluation
        step = StepSummary(
            id=step_id,
            parent=task.parent,
            template_id=task.template_id,
            kind=task.kind,
            hypothesis=task.hypothesis,
            params=task.params,
            verdict=evaluation.verdict,
            metrics=evaluation.metrics,
            gain=evaluation.gain,
            duration_s=duration,
            attempts=len(attempts),
            error=evaluation.feedback if evaluation.verdict == Verdict.FAILED else None,
        )
        with self.lock:
            if self.stopping.is_set():  # the run ended while this step ran: a resume redoes it
                return step
            parent = loop.by_id(task.parent)
            request = ReflectRequest(step=step, attempts=attempts, parent=parent)
            reflection = self._ask("reflector", request, Reflection)
            step.lesson = reflection.lesson
            loop.add(step, attempts[-1].execution, attempts[-1].code)
            if step.kind == "profile" and step.verdict == Verdict.DONE:
                self._learn(loop)
            if outcome.checkpoint is not None:
                self._save(outcome.checkpoint)
            self.store.record_step(self.run_id, step, attempts, started_at)
            _write_note(self.notes, step, reflection.note)
        return step


def _replayed(code: str, accepted: bool) -> str:
    """A kept step's cell as replay runs it: an accepted one ends with its accept line."""
    return code.rstrip() + (f"\n{ACCEPT_CELL}" if accepted else "")


def chain(loop: Loop, step_id: int | None) -> list[tuple[StepSummary, str]]:
    """The kept steps from the first one to `step_id`, following parents, with their code.

    Each accepted step's code ends with its accept line: replaying the cells in a fresh
    kernel rebuilds the state of `step_id`.
    """
    path = []
    step = loop.by_id(step_id)
    while step is not None:
        if step.id in loop.cells:
            path.append((step, _replayed(loop.cells[step.id], step.verdict == Verdict.ACCEPTED)))
        step = loop.by_id(step.parent)
    return path[::-1]


def winning_path(loop: Loop) -> list[tuple[StepSummary, str]]:
    """The chain that ends in the final refit (or, before it, in the best step)."""
    final = next((s.id for s in loop.view.steps if s.kind == "final" and s.id in loop.cells), None)
    return chain(loop, final if final is not None else loop.view.best_step)


def _write_note(folder: Path, step: StepSummary, note: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{step.id:03d}-{step.template_id}.md").write_text(note)

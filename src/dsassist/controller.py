"""The meta-controller: plan -> code -> execute -> evaluate -> reflect, within a budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dsassist.bus import Bus
from dsassist.config import RunConfig
from dsassist.messages import (
    Attempt,
    Cell,
    CodeRequest,
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
from dsassist.sandbox import Sandbox
from dsassist.sandbox.checkpoint import Checkpoint
from dsassist.store import MirroredStore
from dsassist.store.knowledge import summarize
from dsassist.store.provenance import now

ACCEPT_CELL = "spec = candidate_spec"
RECHECK_CELL = "recheck_record = recheck(candidate_spec, spec, columns, X, y, VALIDATION, METRIC, TASK, SEED)"
STEP_SHARE = 0.3  # the largest share of the budget one cell may take


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
    head: int | None = None  # the step whose state the kernel holds
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
            self.head = step.id
        if step.verdict == Verdict.ACCEPTED and self._beats_best(step):
            self.view.best_step = step.id
        if step.kind == "profile" and step.verdict == Verdict.DONE:
            records = execution.records("profile")
            self.view.profile = records[-1] if records else {}


class Controller:
    """Runs steps until the planner is done, the budget is spent or the steps run out."""

    def __init__(
        self,
        bus: Bus,
        sandbox: Sandbox,
        store: MirroredStore,
        run_id: str,
        cfg: RunConfig,
        on_step: Callable[[Progress], None] | None = None,
        spent_s: float = 0.0,
    ) -> None:
        self.bus, self.sandbox, self.store, self.run_id, self.cfg = bus, sandbox, store, run_id, cfg
        self.notes = cfg.out.resolve() / "steps"
        self.checkpoints = cfg.out.resolve() / "checkpoints"
        self.on_step = on_step or (lambda _: None)
        self.started = time.monotonic() - spent_s  # a resumed run has spent part of its budget

    def time_left(self) -> float:
        return self.cfg.budget_s - (time.monotonic() - self.started)

    def run(self, loop: Loop) -> Loop:
        while True:
            loop.view.time_left_s = self.time_left()
            loop.view.steps_left = self.cfg.max_steps - len(loop.view.steps)
            spent = loop.view.steps_left <= 0 or loop.view.time_left_s <= 0
            refit_due = loop.best is not None and not any(s.kind == "final" for s in loop.view.steps)
            if spent and not refit_due:  # with a model to save, the planner plans the refit now
                loop.stop_reason = "budget spent" if loop.view.time_left_s <= 0 else "step limit reached"
                return loop
            plan = self.bus.request("planner", PlanRequest(run=loop.view))
            assert isinstance(plan, Plan)
            if plan.done or not plan.tasks:
                loop.stop_reason = loop.stop_reason or plan.reason
                return loop
            if plan.tasks[0].kind == "final":  # why the run is ending: budget, or nothing left
                loop.stop_reason = plan.reason
            for task in plan.tasks:
                step = self.step(loop, task)
                self.on_step(Progress(step, loop.best, time.monotonic() - self.started, self.time_left()))

    def step(self, loop: Loop, task: Task) -> StepSummary:
        """One hypothesis: code it, run it, fix it in place if it fails, judge it, learn from it."""
        started_at, t0 = now(), time.monotonic()
        step_id = len(loop.view.steps)
        parent = loop.by_id(task.parent)
        if parent is not None and parent.id != loop.head:
            self._branch(loop, parent.id)
        state = self.sandbox.state()
        request = CodeRequest(task=task, state=state, step_id=step_id, history=loop.view.history())
        cell = self.bus.request("coder", request)
        assert isinstance(cell, Cell)
        attempts: list[Attempt] = []
        if cell.gave_up:  # no cell to run: nothing was executed
            failed = Evaluation(verdict=Verdict.FAILED, feedback=f"no cell was written ({cell.rule})")
            attempts.append(Attempt(code="", execution=Execution(ok=False), feedback=failed.feedback))
            return self._record(
                loop, task, step_id, attempts, failed, parent, started_at, time.monotonic() - t0
            )
        while True:
            timeout = self._timeout(task, loop.view)
            execution = self.sandbox.execute(cell.code, timeout=timeout)
            evaluation = self.bus.request(
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
            )
            assert isinstance(evaluation, Evaluation)
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
                state=self.sandbox.state(),
                tried=[a.code for a in attempts],
                step_id=step_id,
            )
            cell = self.bus.request("coder", fix)
            assert isinstance(cell, Cell)
            if cell.gave_up:
                evaluation = evaluation.model_copy(update={"verdict": Verdict.FAILED})
                break
        if evaluation.verdict == Verdict.RECHECK:
            evaluation = self._recheck(task, attempts[-1].execution, parent, loop.view)
            attempts[-1] = attempts[-1].model_copy(update={"feedback": evaluation.feedback})
        return self._record(
            loop, task, step_id, attempts, evaluation, parent, started_at, time.monotonic() - t0
        )

    def _can_recheck(self, execution: Execution, view: RunView) -> bool:
        """Scoring candidate and parent again costs about twice the step: only if that fits."""
        records = execution.records("metrics")
        fit_s = records[-1].get("fit_time_s", 0.0) if records else 0.0
        return self.time_left() - view.refit_reserve_s() > 3 * fit_s + 1.0

    def _recheck(
        self, task: Task, execution: Execution, parent: StepSummary | None, view: RunView
    ) -> Evaluation:
        """Decide a near-tie on new folds; if that cell fails, the tie stays unproven."""
        rerun = self.sandbox.execute(RECHECK_CELL, timeout=self._timeout(task, view))
        records = rerun.records("recheck")
        recheck = (
            Recheck.model_validate(records[-1])
            if rerun.ok and records
            else Recheck(candidate=[], parent=[], why=f"the recheck failed: {rerun.error or 'no record'}")
        )
        request = EvaluateRequest(
            task=task, execution=execution, parent=parent.metrics if parent else None, recheck=recheck
        )
        evaluation = self.bus.request("evaluator", request)
        assert isinstance(evaluation, Evaluation)
        return evaluation

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

    def _branch(self, loop: Loop, step_id: int) -> None:
        """Continue from an earlier step: its checkpoint, restored into a pooled kernel."""
        path = self.checkpoints / f"step-{step_id:03d}.json"
        self.sandbox.branch(Checkpoint.model_validate_json(path.read_text()))
        loop.head = step_id

    def _checkpoint(self, step_id: int, replay: list[str]) -> None:
        """Save the kernel state after a step, before the step is recorded as done.

        The manifest lives in the run folder, out of the kernel's reach; a resumed run
        restores the newest one.
        """
        checkpoint = self.sandbox.checkpoint(f"step-{step_id:03d}", replay=replay)
        folder = self.checkpoints
        folder.mkdir(exist_ok=True)
        tmp = folder / f".{checkpoint.label}.json.tmp"
        tmp.write_text(checkpoint.model_dump_json(indent=1))
        tmp.replace(folder / f"{checkpoint.label}.json")  # a kill mid-write leaves the old state

    def _record(
        self,
        loop: Loop,
        task: Task,
        step_id: int,
        attempts: list[Attempt],
        evaluation: Evaluation,
        parent: StepSummary | None,
        started_at: str,
        duration: float,
    ) -> StepSummary:
        last = attempts[-1]
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
        if step.verdict == Verdict.ACCEPTED:
            self.sandbox.execute(ACCEPT_CELL)
        reflection = self.bus.request(
            "reflector", ReflectRequest(step=step, attempts=attempts, parent=parent)
        )
        assert isinstance(reflection, Reflection)
        step.lesson = reflection.lesson
        loop.add(step, last.execution, last.code)
        if step.kind == "profile" and step.verdict == Verdict.DONE:
            self._learn(loop)
        if step.verdict != Verdict.FAILED:
            self._checkpoint(step_id, [code for _, code in chain(loop, step_id)])
        self.store.record_step(self.run_id, step, attempts, started_at)
        _write_note(self.notes, step, reflection.note)
        return step


def chain(loop: Loop, step_id: int | None) -> list[tuple[StepSummary, str]]:
    """The kept steps from the first one to `step_id`, following parents, with their code.

    Each accepted step's code ends with its accept line: replaying the cells in a fresh
    kernel rebuilds the state of `step_id`.
    """
    path = []
    step = loop.by_id(step_id)
    while step is not None:
        if step.id in loop.cells:
            accepted = step.verdict == Verdict.ACCEPTED
            path.append((step, loop.cells[step.id].rstrip() + (f"\n{ACCEPT_CELL}" if accepted else "")))
        step = loop.by_id(step.parent)
    return path[::-1]


def winning_path(loop: Loop) -> list[tuple[StepSummary, str]]:
    """The chain that ends in the final refit (or, before it, in the best step)."""
    final = next((s.id for s in loop.view.steps if s.kind == "final" and s.id in loop.cells), None)
    return chain(loop, final if final is not None else loop.view.best_step)


def latest_checkpoint(folder: Path, loop: Loop) -> Checkpoint | None:
    """The newest checkpoint of a recorded step (a later one belongs to a step that never finished)."""
    for step in reversed(loop.view.steps):
        path = folder / f"step-{step.id:03d}.json"
        if path.is_file():
            return Checkpoint.model_validate_json(path.read_text())
    return None


def _write_note(folder: Path, step: StepSummary, note: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{step.id:03d}-{step.template_id}.md").write_text(note)

"""The typed messages that the controller and the agents exchange over the bus.

Every message is a pydantic model, so any transport can serialise it to JSON and back.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Verdict(StrEnum):
    ACCEPTED = "accepted"  # a judged hypothesis that helped: the best pipeline moves to it
    REJECTED = "rejected"  # a judged hypothesis that did not help: the parent stays best
    DONE = "done"  # a step that is not judged (setup, profile, validation, final refit)
    RECHECK = "recheck"  # a near-tie: score candidate and parent again on new folds, then decide
    RETRY = "retry"  # the cell failed and a targeted fix is worth trying
    FAILED = "failed"  # the cell failed and no more fixes are allowed


class Metrics(BaseModel):
    """Cross-validated scores of one pipeline, as published by the kernel (never scraped)."""

    metric: str
    higher_is_better: bool
    folds: list[float]
    mean: float
    std: float
    secondary: dict[str, float] = Field(default_factory=dict)
    fit_time_s: float = 0.0

    def gain_over(self, parent: Metrics) -> float:
        """Improvement over `parent`, positive when better whatever the metric's direction."""
        diff = self.mean - parent.mean
        return diff if self.higher_is_better else -diff


class Recheck(BaseModel):
    """A near-tie scored again: candidate and parent on the same freshly shuffled folds."""

    candidate: list[float]
    parent: list[float]
    why: str = ""  # set when no new folds could be drawn


class ErrorInfo(BaseModel):
    name: str
    value: str
    traceback: list[str] = Field(default_factory=list)


class Output(BaseModel):
    """One rich output of a cell: text, an image saved to a file, or a structured record."""

    mime: str
    text: str | None = None
    path: str | None = None  # relative to the sandbox work folder, for binary outputs
    data: dict[str, Any] | None = None  # structured records (application/vnd.dsassist.*+json)


class Execution(BaseModel):
    ok: bool
    stdout: str = ""
    stderr: str = ""
    error: ErrorInfo | None = None
    outputs: list[Output] = Field(default_factory=list)
    duration_s: float = 0.0

    def records(self, kind: str) -> list[dict[str, Any]]:
        """Structured records of one kind (`metrics`, `profile`, ...) that the cell published."""
        mime = f"application/vnd.dsassist.{kind}+json"
        return [o.data for o in self.outputs if o.mime == mime and o.data is not None]


class Variable(BaseModel):
    name: str
    type: str
    shape: str | None = None
    detail: str | None = None  # dtypes of a frame, keys of a dict, repr of a scalar
    columns: list[str] | None = None  # a frame's column names (the first hundred)


class KernelState(BaseModel):
    """A compact picture of what the live kernel holds, for the coder."""

    variables: list[Variable] = Field(default_factory=list)
    modules: list[str] = Field(default_factory=list)

    def has(self, name: str) -> bool:
        return any(v.name == name for v in self.variables)


class Task(BaseModel):
    """One minimal subtask: a hypothesis to test with one template."""

    template_id: str
    kind: str
    hypothesis: str
    params: dict[str, Any] = Field(default_factory=dict)
    judged: bool = True  # compared with its parent on the same folds, kept only if it helps
    parent: int | None = None


class StepSummary(BaseModel):
    """What the planner and the report need to know about a finished step."""

    id: int
    parent: int | None
    template_id: str
    kind: str
    hypothesis: str
    params: dict[str, Any] = Field(default_factory=dict)
    verdict: Verdict
    metrics: Metrics | None = None
    gain: float | None = None
    duration_s: float = 0.0
    attempts: int = 1
    error: str | None = None
    lesson: str = ""

    def line(self) -> str:
        score = f" {self.metrics.metric} {self.metrics.mean:.4f}" if self.metrics else ""
        lesson = f": {self.lesson}" if self.lesson else ""
        return f"step {self.id} [{self.verdict.value}]{score} {self.hypothesis}{lesson}"


class Prior(BaseModel):
    """How one template fared on earlier runs on similar data."""

    tried: int
    kept: int
    mean_gain: float | None = None
    runs: int = 0

    @property
    def rate(self) -> float:
        """The kept share, shrunk towards one half when there is little evidence."""
        return (self.kept + 1) / (self.tried + 2)


class RunView(BaseModel):
    """The state of the run as the planner sees it."""

    task: str  # binary, multiclass or regression
    metric: str
    profile: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepSummary] = Field(default_factory=list)
    best_step: int | None = None
    time_left_s: float
    steps_left: int
    options: dict[str, Any] = Field(default_factory=dict)  # user choices: group column, time column
    priors: dict[str, Prior] = Field(default_factory=dict)  # template id -> earlier runs on similar data
    running: list[Task] = Field(default_factory=list)  # started on parallel branches, not finished

    def history(self, limit: int = 12) -> str:
        """The latest steps, one line each: what was tried and what came of it."""
        lines = [s.line() for s in self.steps[-limit:]]
        skipped = len(self.steps) - len(lines)
        return "\n".join(([f"({skipped} earlier steps not shown)"] if skipped > 0 else []) + lines)

    def refit_reserve_s(self) -> float:
        """Seconds to keep for the final refit: it fits once and explains on two folds, one
        after the other, about one sequential cross-validation of the best step, with a
        margin. Folds that ran two at a time took half that wall time: their summed fit time
        says what a sequential pass costs."""
        best = next((s for s in self.steps if s.id == self.best_step), None)
        if best is None or best.metrics is None:
            return 0.0
        return 1.5 * max(best.duration_s, best.metrics.fit_time_s) + 5.0


# ---- requests and replies, one pair per agent -------------------------------------------


class PlanRequest(BaseModel):
    run: RunView


class Plan(BaseModel):
    tasks: list[Task] = Field(default_factory=list)
    done: bool = False
    wait: bool = False  # nothing can start until a running step has finished
    reason: str = ""


class CodeRequest(BaseModel):
    task: Task
    state: KernelState
    step_id: int | None = None
    history: str = ""  # the latest steps, one line each (RunView.history)


class FixRequest(BaseModel):
    task: Task
    code: str
    execution: Execution
    feedback: str
    attempt: int
    state: KernelState
    tried: list[str] = Field(default_factory=list)  # the step's earlier cells, to detect a looping fixer
    step_id: int | None = None


class Cell(BaseModel):
    code: str
    rule: str = ""  # for a fix: which repair was applied
    gave_up: bool = False  # the coder has no fix to offer


class EvaluateRequest(BaseModel):
    task: Task
    execution: Execution
    code: str = ""
    step_id: int | None = None
    parent: Metrics | None = None
    attempt: int = 0
    max_attempts: int = 0
    can_recheck: bool = False  # the budget allows scoring a near-tie again
    recheck: Recheck | None = None


class Evaluation(BaseModel):
    verdict: Verdict
    metrics: Metrics | None = None
    gain: float | None = None
    feedback: str = ""


class AnswerRequest(BaseModel):
    """The direct answer to the run's question, from the evidence the steps produced."""

    question: str
    evidence: list[str]
    summary: str  # the offline answer, built from the verdicts and the final model's drivers


class Answer(BaseModel):
    text: str


class Attempt(BaseModel):
    """One execution of a step's cell; a failed attempt is followed by a fix."""

    code: str
    execution: Execution
    feedback: str = ""  # the evaluator's word on this attempt
    fix_rule: str = ""  # the repair that produced this attempt's code, if it is a fix


class ReflectRequest(BaseModel):
    step: StepSummary
    attempts: list[Attempt]
    parent: StepSummary | None = None


class Reflection(BaseModel):
    lesson: str
    note: str  # the Markdown note for this loop iteration


class LLMCall(BaseModel):
    """One request to a model, as recorded in the provenance store."""

    role: str
    model: str  # the name in dsassist.toml
    model_name: str  # the provider's name for it
    prompt_template: str
    prompt_version: int
    prompt: str
    response: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    retries: int = 0
    outcome: str  # ok, unusable: <why>, refused, timeout, http 429, ...
    step_id: int | None = None
    started_at: str = ""

"""The evaluator: did the cell run, what did it score, and is the change worth keeping?"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel

from dsassist.llm.parse import json_reply, plain_text
from dsassist.llm.prompts import ANSWER, JUDGE, clip
from dsassist.llm.router import NoModel, Router
from dsassist.messages import (
    Answer,
    AnswerRequest,
    EvaluateRequest,
    Evaluation,
    Execution,
    Metrics,
    Recheck,
    Verdict,
)


class Evaluator:
    """Offline policy: keep a hypothesis only if its gain over its parent beats the fold spread.

    On the same folds, the gain must be at least one standard error of the paired per-fold
    differences. A positive gain short of that is a near-tie: when the budget allows, both
    pipelines are scored again on freshly shuffled folds and the pooled differences decide.
    """

    noise_factor = 1.0

    def handle(self, request: EvaluateRequest | AnswerRequest) -> Evaluation | Answer:
        if isinstance(request, AnswerRequest):
            return Answer(text=request.summary)
        return self.evaluate(request)

    def evaluate(self, request: EvaluateRequest) -> Evaluation:
        execution = request.execution
        if not execution.ok:
            verdict = Verdict.RETRY if request.attempt < request.max_attempts else Verdict.FAILED
            return Evaluation(verdict=verdict, feedback=feedback_for(execution))
        if not request.task.judged:
            return Evaluation(verdict=Verdict.DONE, feedback="ran without error")
        records = execution.records("metrics")
        if not records:
            return Evaluation(
                verdict=Verdict.FAILED,
                feedback="the cell ran but published no metrics record: call evaluate(...)",
            )
        metrics = Metrics.model_validate(records[-1])
        if request.parent is None:
            return Evaluation(
                verdict=Verdict.ACCEPTED, metrics=metrics, feedback=f"reference score {_fmt(metrics)}"
            )
        return self.judge(metrics, request.parent, request.can_recheck, request.recheck)

    def judge(
        self, metrics: Metrics, parent: Metrics, can_recheck: bool = False, recheck: Recheck | None = None
    ) -> Evaluation:
        diffs = paired_differences(metrics.folds, parent.folds, metrics.higher_is_better)
        gain, noise = metrics.gain_over(parent), standard_error(diffs)
        summary = f"{_fmt(metrics)} vs {parent.mean:.4f}: gain {gain:+.4f} (paired SE {noise:.4f})"
        near_tie = 0 < gain < self.noise_factor * noise
        if near_tie and recheck is None and can_recheck:
            feedback = f"{summary}, near-tie: rechecking"
            return Evaluation(verdict=Verdict.RECHECK, metrics=metrics, gain=gain, feedback=feedback)
        if near_tie and recheck is not None and recheck.candidate:
            diffs += paired_differences(recheck.candidate, recheck.parent, metrics.higher_is_better)
            pooled, noise = sum(diffs) / len(diffs), standard_error(diffs)
            kept = pooled > 0 and pooled >= self.noise_factor * noise
            summary += f"; near-tie rechecked on {len(diffs)} folds: gain {pooled:+.4f} (SE {noise:.4f})"
        else:
            kept = gain > 0 and not near_tie
            if recheck is not None and recheck.why:
                summary += f"; not rechecked: {recheck.why}"
        why = "kept" if kept else ("worse" if gain <= 0 else "within noise: not kept")
        verdict = Verdict.ACCEPTED if kept else Verdict.REJECTED
        return Evaluation(verdict=verdict, metrics=metrics, gain=gain, feedback=f"{summary}, {why}")


class Judgement(BaseModel):
    answered: bool
    finding: str = ""
    feedback: str = ""


class ModelEvaluator(Evaluator):
    """With a model: whether an open-question cell's output answers its subtask, and the
    direct answer to the question at the end. Scores are still judged by the rule above."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def handle(self, request: EvaluateRequest | AnswerRequest) -> Evaluation | Answer:
        if isinstance(request, AnswerRequest):
            return self.answer(request)
        evaluation = self.evaluate(request)
        if request.task.kind != "analysis" or evaluation.verdict != Verdict.DONE:
            return evaluation
        prompt = JUDGE.render(
            hypothesis=request.task.hypothesis,
            code=request.code.rstrip(),
            output=clip(request.execution.stdout or "(no output)", 3000),
        )
        try:
            judged = self.router.ask(
                "evaluator", prompt, lambda text: json_reply(text, Judgement), step_id=request.step_id
            )
        except NoModel:
            return evaluation
        if judged.answered:
            return Evaluation(verdict=Verdict.DONE, feedback=judged.finding or "answered")
        verdict = Verdict.RETRY if request.attempt < request.max_attempts else Verdict.FAILED
        return Evaluation(
            verdict=verdict, feedback=f"the output does not answer the subtask: {judged.feedback}"
        )

    def answer(self, request: AnswerRequest) -> Answer:
        prompt = ANSWER.render(
            question=request.question,
            evidence="\n".join(request.evidence) or "(none)",
            summary=request.summary,
        )
        try:
            return Answer(text=self.router.ask("evaluator", prompt, plain_text))
        except NoModel:
            return Answer(text=request.summary)


def paired_differences(a: list[float], b: list[float], higher_is_better: bool) -> list[float]:
    """Per-fold gains of `a` over `b` (the folds are shared), positive when `a` is better."""
    sign = 1.0 if higher_is_better else -1.0
    return [sign * (x - y) for x, y in zip(a, b, strict=False)]


def standard_error(values: list[float]) -> float:
    """Standard error of the mean of `values`."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    var = sum((d - mean) ** 2 for d in values) / (len(values) - 1)
    return math.sqrt(var / len(values))


def feedback_for(execution: Execution) -> str:
    """Targeted feedback: the error, and the line of the cell where it was raised."""
    error = execution.error
    if error is None:
        return ""
    in_cell = [entry for entry in error.traceback if entry.lstrip().startswith("Cell In")]
    lines = in_cell[-1].splitlines() if in_cell else []
    arrow = next((line for line in lines if line.startswith("---->")), "")
    text = f"{error.name}: {error.value}"
    match = re.match(r"---->\s*(\d+)\s?(.*)", arrow)
    return f"{text} (line {match.group(1)}: {match.group(2).strip()})" if match else text


def _fmt(m: Metrics) -> str:
    return f"{m.metric} {m.mean:.4f} ± {m.std:.4f}"

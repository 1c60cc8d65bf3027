"""The evaluator: did the cell run, what did it score, and is the change worth keeping?"""

from __future__ import annotations

import math
import re

from dsassist.messages import EvaluateRequest, Evaluation, Execution, Metrics, Verdict


class Evaluator:
    """Offline policy: keep a hypothesis only if it beats its parent on the same folds.

    "Beats" means a positive mean gain of at least half the standard error of the paired
    per-fold differences, so a change that wins by noise alone is not kept.
    """

    noise_factor = 0.5

    def handle(self, request: EvaluateRequest) -> Evaluation:
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
        return self.judge(metrics, request.parent)

    def judge(self, metrics: Metrics, parent: Metrics) -> Evaluation:
        gain = metrics.gain_over(parent)
        noise = paired_standard_error(metrics, parent)
        kept = gain > 0 and gain >= self.noise_factor * noise
        why = "kept" if kept else ("worse" if gain <= 0 else "within noise: not kept")
        feedback = f"{_fmt(metrics)} vs {parent.mean:.4f}: gain {gain:+.4f} (paired SE {noise:.4f}), {why}"
        verdict = Verdict.ACCEPTED if kept else Verdict.REJECTED
        return Evaluation(verdict=verdict, metrics=metrics, gain=gain, feedback=feedback)


def paired_standard_error(a: Metrics, b: Metrics) -> float:
    """Standard error of the mean per-fold difference (the folds are shared)."""
    diffs = [x - y for x, y in zip(a.folds, b.folds, strict=False)]
    if len(diffs) < 2:
        return 0.0
    mean = sum(diffs) / len(diffs)
    var = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
    return math.sqrt(var / len(diffs))


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

"""The reflector: what one step taught, as a lesson and a Markdown note for the run folder."""

from __future__ import annotations

import contextlib

from dsassist.llm.parse import plain_text
from dsassist.llm.prompts import REFLECT, clip
from dsassist.llm.router import NoModel, Router
from dsassist.messages import Attempt, Reflection, ReflectRequest, StepSummary, Verdict


class Reflector:
    """Offline policy: a factual lesson from the verdict, gain and fixes."""

    def handle(self, request: ReflectRequest) -> Reflection:
        lesson = lesson_for(request.step, request.parent, request.attempts)
        return Reflection(lesson=lesson, note=note_for(request.step, request.attempts, lesson))


class ModelReflector(Reflector):
    """With a model: the lesson of an open-question step or a failure, in the model's words.

    The lessons of judged template steps stay factual (verdict, score, gain): a model adds
    cost there, not insight."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def handle(self, request: ReflectRequest) -> Reflection:
        step = request.step
        lesson = lesson_for(step, request.parent, request.attempts)
        if step.kind == "analysis" or step.verdict == Verdict.FAILED:
            last = request.attempts[-1]
            prompt = REFLECT.render(
                step=step.id,
                hypothesis=step.hypothesis,
                verdict=step.verdict.value,
                outcome=f"{last.feedback}\n{clip(last.execution.stdout, 1500)}",
            )
            with contextlib.suppress(NoModel):
                lesson = self.router.ask("reflector", prompt, plain_text, step_id=step.id)
        return Reflection(lesson=lesson, note=note_for(step, request.attempts, lesson))


def lesson_for(step: StepSummary, parent: StepSummary | None, attempts: list[Attempt]) -> str:
    fixes = [a.fix_rule for a in attempts if a.fix_rule]
    fixed = f" after {len(fixes)} fix(es) ({', '.join(fixes)})" if fixes else ""
    if step.verdict == Verdict.FAILED:
        return f"{step.template_id} failed{fixed}: {step.error}; the run went on without it"
    if step.metrics is None:
        return f"{step.template_id} done{fixed}"
    m = step.metrics
    score = f"{m.metric} {m.mean:.4f} ± {m.std:.4f}"
    if parent is None or parent.metrics is None or step.gain is None:
        return f"{step.template_id}: {score} is the reference{fixed}"
    if step.verdict == Verdict.ACCEPTED:
        return f"{step.template_id} helped{fixed}: {score}, {step.gain:+.4f} over step {parent.id}"
    return (
        f"{step.template_id} did not help{fixed}: {score}, {step.gain:+.4f} vs step {parent.id}; "
        f"kept step {parent.id}"
    )


def note_for(step: StepSummary, attempts: list[Attempt], lesson: str) -> str:
    lines = [
        f"# Step {step.id}: {step.hypothesis}",
        "",
        f"- template: `{step.template_id}` ({step.kind}); parent: {_or_dash(step.parent)}",
        f"- verdict: **{step.verdict.value}**; time: {step.duration_s:.2f}s; attempts: {len(attempts)}",
    ]
    if step.metrics is not None:
        m = step.metrics
        folds = ", ".join(f"{v:.4f}" for v in m.folds)
        lines.append(f"- {m.metric}: {m.mean:.4f} ± {m.std:.4f} (folds: {folds})")
        if step.gain is not None:
            lines.append(f"- gain over parent: {step.gain:+.4f}")
            lines.append(f"- judgement: {attempts[-1].feedback}")
    lines += ["", f"**Lesson.** {lesson}", ""]
    for i, attempt in enumerate(attempts, 1):
        title = f"Attempt {i}" + (f" (fix: {attempt.fix_rule})" if attempt.fix_rule else "")
        lines += [f"## {title}", "", "```python", attempt.code.rstrip(), "```", ""]
        out = attempt.execution.stdout.strip()
        if out:
            lines += ["Output:", "", "```", _clip(out), "```", ""]
        if attempt.execution.error is not None:
            lines += [f"Error: `{attempt.feedback}`", ""]
        for o in attempt.execution.outputs:
            if o.path:
                lines += [f"![output](../{o.path})", ""]
    return "\n".join(lines)


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def _clip(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[:limit] + "\n..."

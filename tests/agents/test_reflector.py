"""The reflector through its message interface: ReflectRequest in, Reflection out."""

from __future__ import annotations

from dsassist.agents import Reflector
from dsassist.messages import (
    Attempt,
    ErrorInfo,
    Execution,
    Metrics,
    Output,
    Reflection,
    ReflectRequest,
    StepSummary,
    Verdict,
)

PARENT_METRICS = Metrics(metric="roc_auc", higher_is_better=True, folds=[0.8, 0.8, 0.8], mean=0.8, std=0.0)
STEP_METRICS = Metrics(
    metric="roc_auc", higher_is_better=True, folds=[0.84, 0.85, 0.86], mean=0.85, std=0.0082
)

BROKEN = "candidate_spec = {**spec, **{'model': 'linear'}}\nqt = QuantileTransformer()"
FIXED = "from sklearn.preprocessing import QuantileTransformer\n" + BROKEN


def step(verdict=Verdict.ACCEPTED, metrics=STEP_METRICS, gain=0.05, error=None, step_id=6) -> StepSummary:
    return StepSummary(
        id=step_id,
        parent=4,
        template_id="linear",
        kind="model",
        hypothesis="A regularised linear model beats the best so far",
        params={"change": {"model": "linear", "params": {}}},
        verdict=verdict,
        metrics=metrics,
        gain=gain,
        duration_s=1.25,
        attempts=2,
        error=error,
    )


PARENT = StepSummary(
    id=4,
    parent=3,
    template_id="baseline",
    kind="baseline",
    hypothesis="A dummy baseline",
    verdict=Verdict.ACCEPTED,
    metrics=PARENT_METRICS,
)


def attempts() -> list[Attempt]:
    failed = Execution(
        ok=False,
        error=ErrorInfo(name="NameError", value="name 'QuantileTransformer' is not defined"),
    )
    worked = Execution(
        ok=True,
        stdout="roc_auc: 0.8500 ± 0.0082 over 3 folds\n",
        outputs=[Output(mime="image/png", path="artifacts/abc123.png")],
    )
    return [
        Attempt(
            code=BROKEN, execution=failed, feedback="NameError: name 'QuantileTransformer' is not defined"
        ),
        Attempt(code=FIXED, execution=worked, feedback="kept", fix_rule="add-missing-import"),
    ]


def reflect(s: StepSummary, tries: list[Attempt], parent=PARENT) -> Reflection:
    reply = Reflector().handle(ReflectRequest(step=s, attempts=tries, parent=parent))
    assert isinstance(reply, Reflection)
    return reply


def test_lesson_of_an_accepted_step_mentions_fixes_gain_and_parent():
    lesson = reflect(step(), attempts()).lesson
    assert "linear" in lesson and "helped" in lesson
    assert "1 fix" in lesson and "add-missing-import" in lesson
    assert "+0.0500" in lesson
    assert "0.8500" in lesson
    assert "step 4" in lesson


def test_lesson_of_a_rejected_step_says_the_parent_is_kept():
    clean = attempts()[1].model_copy(update={"fix_rule": ""})
    lesson = reflect(step(Verdict.REJECTED, gain=-0.02), [clean]).lesson
    assert "did not help" in lesson and "-0.0200" in lesson and "kept step 4" in lesson
    assert "fix" not in lesson  # no fix was applied


def test_lesson_of_a_failed_step_gives_the_error():
    s = step(Verdict.FAILED, metrics=None, gain=None, error="KeyError: 'Agee'")
    lesson = reflect(s, attempts()[:1]).lesson
    assert "failed" in lesson and "KeyError: 'Agee'" in lesson


def test_lesson_without_parent_is_the_reference():
    lesson = reflect(step(gain=None), attempts()[1:], parent=None).lesson
    assert "reference" in lesson and "0.8500" in lesson


def test_note_has_the_code_of_every_attempt_and_the_outcome():
    tries = attempts()
    r = reflect(step(), tries)
    note = r.note
    assert note.startswith("# Step 6: A regularised linear model beats the best so far")
    for attempt in tries:
        assert f"```python\n{attempt.code}\n```" in note
    assert note.index("## Attempt 1") < note.index("## Attempt 2 (fix: add-missing-import)")
    assert "NameError: name 'QuantileTransformer' is not defined" in note  # the failure
    assert "roc_auc: 0.8500 ± 0.0082 over 3 folds" in note  # the output
    assert "![output](../artifacts/abc123.png)" in note  # plot, relative to steps/
    assert "0.8400, 0.8500, 0.8600" in note  # per-fold scores
    assert "+0.0500" in note
    assert "**accepted**" in note and "attempts: 2" in note
    assert r.lesson in note

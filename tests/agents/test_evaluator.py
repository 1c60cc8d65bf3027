"""The evaluator through its message interface: EvaluateRequest in, Evaluation out."""

from __future__ import annotations

import math

import pytest

from dsassist.agents import Evaluator
from dsassist.messages import (
    ErrorInfo,
    EvaluateRequest,
    Evaluation,
    Execution,
    Metrics,
    Output,
    Recheck,
    Task,
    Verdict,
)

METRICS_MIME = "application/vnd.dsassist.metrics+json"


def task(judged: bool = True) -> Task:
    return Task(template_id="linear", kind="model", hypothesis="linear helps", judged=judged, parent=4)


def metrics(folds: list[float], metric="roc_auc", higher=True) -> Metrics:
    mean = sum(folds) / len(folds)
    std = math.sqrt(sum((f - mean) ** 2 for f in folds) / len(folds))
    return Metrics(metric=metric, higher_is_better=higher, folds=folds, mean=mean, std=std)


def ran(*records: Metrics, stdout="") -> Execution:
    outputs = [Output(mime="text/plain", text="a repr")]
    outputs += [Output(mime=METRICS_MIME, data=m.model_dump()) for m in records]
    return Execution(ok=True, stdout=stdout, outputs=outputs, duration_s=0.5)


def crashed() -> Execution:
    error = ErrorInfo(
        name="KeyError",
        value="'Agee'",
        traceback=[
            "KeyError    Traceback",
            "Cell In[3], line 2\n----> 2 df['Agee'].mean()\n",
            "KeyError: 'Agee'",
        ],
    )
    return Execution(ok=False, error=error)


def judge(
    execution, parent=None, judged=True, attempt=0, max_attempts=2, can_recheck=False, recheck=None
) -> Evaluation:
    request = EvaluateRequest(
        task=task(judged),
        execution=execution,
        parent=parent,
        attempt=attempt,
        max_attempts=max_attempts,
        can_recheck=can_recheck,
        recheck=recheck,
    )
    reply = Evaluator().handle(request)
    assert isinstance(reply, Evaluation)
    return reply


PARENT = metrics([0.80, 0.81, 0.79, 0.80, 0.80])


def test_failed_execution_is_retried_while_attempts_remain():
    for attempt in (0, 1):
        e = judge(crashed(), attempt=attempt, max_attempts=2)
        assert e.verdict == Verdict.RETRY
        assert "KeyError" in e.feedback and "Agee" in e.feedback
        assert "line 2" in e.feedback  # where in the cell it was raised
        assert e.metrics is None


def test_failed_execution_fails_when_attempts_are_used_up():
    assert judge(crashed(), attempt=2, max_attempts=2).verdict == Verdict.FAILED
    assert judge(crashed(), attempt=0, max_attempts=0).verdict == Verdict.FAILED


def test_failed_unjudged_step_is_also_retried():
    assert judge(crashed(), judged=False, attempt=0).verdict == Verdict.RETRY


def test_unjudged_step_that_ran_is_done():
    e = judge(ran(), judged=False, parent=PARENT)
    assert e.verdict == Verdict.DONE
    assert e.metrics is None and e.gain is None


def test_judged_step_without_metrics_record_fails():
    e = judge(ran(stdout="roc_auc: 0.9 (printed, not published)"), parent=PARENT)
    assert e.verdict == Verdict.FAILED
    assert "metrics" in e.feedback


def test_without_parent_the_score_is_the_reference():
    m = metrics([0.7, 0.72, 0.71])
    e = judge(ran(m), parent=None)
    assert e.verdict == Verdict.ACCEPTED
    assert e.metrics == m
    assert e.gain is None


def test_better_beyond_noise_is_accepted_with_its_gain():
    better = metrics([0.85, 0.85, 0.84, 0.86, 0.85])
    e = judge(ran(better), parent=PARENT)
    assert e.verdict == Verdict.ACCEPTED
    assert e.gain == pytest.approx(0.05)
    assert e.metrics == better


def test_better_within_noise_is_rejected():
    # mean gain +0.01, but the paired per-fold differences swing by +-0.1
    noisy = metrics([0.70, 0.91, 0.69, 0.90, 0.85])
    e = judge(ran(noisy), parent=PARENT)
    assert e.gain == pytest.approx(0.01)
    assert e.verdict == Verdict.REJECTED
    assert "noise" in e.feedback


def test_worse_is_rejected():
    worse = metrics([0.75, 0.76, 0.74, 0.75, 0.75])
    e = judge(ran(worse), parent=PARENT)
    assert e.verdict == Verdict.REJECTED
    assert e.gain == pytest.approx(-0.05)


def test_equal_is_rejected():
    e = judge(ran(metrics(list(PARENT.folds))), parent=PARENT)
    assert e.verdict == Verdict.REJECTED
    assert e.gain == pytest.approx(0.0)


def test_the_last_metrics_record_is_judged():
    first = metrics([0.5, 0.5, 0.5, 0.5, 0.5])
    last = metrics([0.9, 0.9, 0.9, 0.9, 0.91])
    e = judge(ran(first, last), parent=PARENT)
    assert e.metrics == last and e.verdict == Verdict.ACCEPTED


def test_lower_rmse_is_a_positive_gain():
    parent = metrics([10.0, 11.0, 10.5, 10.2, 10.3], metric="rmse", higher=False)
    lower = metrics([9.0, 10.0, 9.5, 9.2, 9.3], metric="rmse", higher=False)
    e = judge(ran(lower), parent=parent)
    assert e.verdict == Verdict.ACCEPTED
    assert e.gain == pytest.approx(1.0)

    higher = metrics([11.0, 12.0, 11.5, 11.2, 11.3], metric="rmse", higher=False)
    e = judge(ran(higher), parent=parent)
    assert e.verdict == Verdict.REJECTED
    assert e.gain == pytest.approx(-1.0)


# a near-tie: +0.01 on average, but the per-fold gains swing between -0.03 and +0.05 (SE 0.0126)
NEAR_TIE = metrics([0.81, 0.86, 0.76, 0.81, 0.81])


def test_gain_within_one_standard_error_is_a_near_tie_not_kept_without_a_recheck():
    e = judge(ran(NEAR_TIE), parent=PARENT, can_recheck=False)
    assert e.gain == pytest.approx(0.01)
    assert e.verdict == Verdict.REJECTED
    assert "noise" in e.feedback


def test_near_tie_asks_for_a_recheck_when_the_budget_allows():
    e = judge(ran(NEAR_TIE), parent=PARENT, can_recheck=True)
    assert e.verdict == Verdict.RECHECK
    assert e.metrics == NEAR_TIE


def test_clear_outcomes_are_never_rechecked():
    assert judge(ran(metrics([0.85, 0.85, 0.84, 0.86, 0.85])), PARENT, can_recheck=True).verdict == (
        Verdict.ACCEPTED
    )
    assert judge(ran(metrics([0.75] * 5)), PARENT, can_recheck=True).verdict == Verdict.REJECTED


def test_recheck_that_confirms_the_gain_keeps_the_step_with_its_original_metrics():
    confirmed = Recheck(candidate=[0.82, 0.83, 0.82, 0.81, 0.82], parent=[0.80, 0.81, 0.80, 0.80, 0.80])
    e = judge(ran(NEAR_TIE), parent=PARENT, can_recheck=True, recheck=confirmed)
    assert e.verdict == Verdict.ACCEPTED
    assert e.metrics == NEAR_TIE  # comparable with every other step: same folds
    assert "10 folds" in e.feedback


def test_recheck_that_shows_no_gain_rejects_the_step():
    refuted = Recheck(candidate=[0.79, 0.80, 0.81, 0.79, 0.80], parent=[0.80, 0.81, 0.80, 0.80, 0.80])
    e = judge(ran(NEAR_TIE), parent=PARENT, can_recheck=True, recheck=refuted)
    assert e.verdict == Verdict.REJECTED
    assert "10 folds" in e.feedback


def test_recheck_without_new_folds_leaves_the_tie_unproven():
    none = Recheck(candidate=[], parent=[], why="time folds cannot be reshuffled")
    e = judge(ran(NEAR_TIE), parent=PARENT, can_recheck=True, recheck=none)
    assert e.verdict == Verdict.REJECTED
    assert "cannot be reshuffled" in e.feedback


def test_recheck_judges_losses_by_their_direction():
    parent = metrics([1.00, 1.00, 1.00, 1.00, 1.00], metric="rmse", higher=False)
    candidate = metrics([0.99, 0.94, 1.04, 0.99, 0.99], metric="rmse", higher=False)  # lower is better
    assert judge(ran(candidate), parent, can_recheck=True).verdict == Verdict.RECHECK
    lower = Recheck(candidate=[0.97, 0.98, 0.97, 0.98, 0.97], parent=[1.0] * 5)
    assert judge(ran(candidate), parent, can_recheck=True, recheck=lower).verdict == Verdict.ACCEPTED

"""The planner through its message interface: PlanRequest in, Plan out."""

from __future__ import annotations

import json

import pytest

from dsassist.agents import Planner
from dsassist.agents.planner import PHASES
from dsassist.messages import Metrics, Plan, PlanRequest, RunView, StepSummary, Task, Verdict
from dsassist.templates.tabular.library import TEMPLATES

OPTIONS = {
    "seed": 0,
    "task": "binary",
    "metric": "roc_auc",
    "target": "survived",
    "path": "data/titanic.csv",
    "folds": 5,
}

PROFILE = {
    "rows": 300,
    "columns": {
        "passenger_id": {"kind": "identifier", "missing": 0.0, "unique": 300},
        "age": {"kind": "numeric", "missing": 0.2, "unique": 80, "skew": 0.4},
        "fare": {"kind": "numeric", "missing": 0.0, "unique": 200, "skew": 4.8},
        "sex": {"kind": "categorical", "missing": 0.0, "unique": 2},
    },
    "suspicious": {"passenger_id": "identifier: 300 distinct values in 300 rows"},
    "target": {"classes": {"0": 180, "1": 120}, "majority": 0.6},
    "time_column": None,
    "group_column": None,
}

SETUP_KINDS = ("setup", "profile", "guard", "validation")


def metrics(mean: float) -> Metrics:
    return Metrics(
        metric="roc_auc",
        higher_is_better=True,
        folds=[mean - 0.01, mean, mean + 0.01],
        mean=mean,
        std=0.01,
    )


def view(steps=(), best=None, time_left=1000.0, steps_left=40, profile=None) -> RunView:
    return RunView(
        task="binary",
        metric="roc_auc",
        profile=PROFILE if profile is None else profile,
        steps=list(steps),
        best_step=best,
        time_left_s=time_left,
        steps_left=steps_left,
        options=dict(OPTIONS),
    )


def summary(step_id: int, task: Task, verdict: Verdict, m: Metrics | None = None, duration=1.0):
    return StepSummary(
        id=step_id,
        parent=task.parent,
        template_id=task.template_id,
        kind=task.kind,
        hypothesis=task.hypothesis,
        params=task.params,
        verdict=verdict,
        metrics=m,
        duration_s=duration,
    )


def plan(planner: Planner, run: RunView) -> Plan:
    reply = planner.handle(PlanRequest(run=run))
    assert isinstance(reply, Plan)
    return reply


def next_task(planner: Planner, run: RunView) -> Task:
    reply = plan(planner, run)
    assert not reply.done, reply.reason
    assert len(reply.tasks) == 1
    return reply.tasks[0]


def advance(planner, run, verdict=None, m=None, duration=1.0) -> StepSummary:
    """Plan one step, record it with the given outcome (DONE for unjudged steps)."""
    task = next_task(planner, run)
    if verdict is None:
        verdict = Verdict.DONE if not task.judged else Verdict.ACCEPTED
    if task.judged and m is None and verdict in (Verdict.ACCEPTED, Verdict.REJECTED):
        m = metrics(0.6 + 0.01 * len(run.steps))
    step = summary(len(run.steps), task, verdict, m, duration)
    run.steps.append(step)
    if verdict == Verdict.ACCEPTED:
        run.best_step = step.id
    run.steps_left -= 1
    return step


def through_baseline(planner, baseline_duration=1.0) -> RunView:
    """A run whose set-up steps are done and whose baseline is accepted."""
    run = view()
    for _ in SETUP_KINDS:
        advance(planner, run)
    baseline = advance(planner, run, duration=baseline_duration)
    assert baseline.template_id == "baseline"
    return run


@pytest.fixture
def planner() -> Planner:
    """Pure exploitation: the template phases in order, each hypothesis once."""
    return Planner(TEMPLATES, explore_share=0.0)


def test_first_task_is_setup_with_the_run_options(planner):
    task = next_task(planner, view())
    assert task.template_id == "setup" and task.kind == "setup"
    assert task.judged is False
    assert task.parent is None
    assert task.params == {k: OPTIONS[k] for k in ("seed", "task", "metric", "target", "path")}
    assert "survived" in task.hypothesis


def test_setup_steps_chain_to_the_previous_step(planner):
    run = view()
    steps = [advance(planner, run) for _ in SETUP_KINDS]
    assert [s.kind for s in steps] == list(SETUP_KINDS)
    assert [s.parent for s in steps] == [None, 0, 1, 2]
    assert steps[-1].params["scheme"] == "stratified"  # binary task, no group or time column


def test_judged_tasks_build_on_the_best_step(planner):
    run = through_baseline(planner)
    task = next_task(planner, run)
    assert task.kind == "model" and task.judged
    assert task.parent == run.best_step == 4


def simulate(planner: Planner, accept=lambda step_id: True, limit=100) -> tuple[RunView, Plan]:
    run = view()
    for _ in range(limit):
        reply = plan(planner, run)
        if reply.done:
            return run, reply
        (task,) = reply.tasks
        if task.judged and run.best_step is not None and task.kind != "explore":
            assert task.parent == run.best_step, "a judged task must build on the best step"
        if task.judged:
            verdict = Verdict.ACCEPTED if accept(len(run.steps)) else Verdict.REJECTED
            if task.kind == "baseline":
                verdict = Verdict.ACCEPTED
        else:
            verdict = Verdict.DONE
        m = metrics(0.6 + 0.005 * len(run.steps)) if task.judged else None
        run.steps.append(summary(len(run.steps), task, verdict, m))
        if verdict == Verdict.ACCEPTED:
            run.best_step = len(run.steps) - 1
        run.steps_left -= 1
    raise AssertionError(f"the planner did not finish in {limit} steps")


@pytest.mark.parametrize("accept", [lambda i: True, lambda i: i % 2 == 0, lambda i: False])
def test_whole_run_goes_through_phases_in_order_once_each(planner, accept):
    run, last = simulate(planner, accept)
    kinds = [s.kind for s in run.steps]
    order = [PHASES.index(k) for k in kinds]
    assert order == sorted(order), kinds
    assert kinds[:5] == [*SETUP_KINDS, "baseline"]
    assert {"model", "feature"} <= set(kinds)
    assert kinds[-1] == "final" and kinds.count("final") == 1
    assert last.done
    keys = [(s.template_id, json.dumps(s.params, sort_keys=True)) for s in run.steps]
    assert len(keys) == len(set(keys)), "a (template, params) pair was planned twice"
    # features follow the profile: the skewed column is logged, the suspicious id never used
    changes = [s.params["change"] for s in run.steps if s.kind == "feature"]
    assert {"log_features": ["fare"]} in changes
    assert {"missing_indicators": True} in changes  # "age" has gaps
    assert any("categorical" in c for c in changes)  # "sex" is categorical
    assert {"categorical": "target"} not in changes  # "sex" has two values only
    assert not any({"date_parts", "text"} & set(c) for c in changes)  # no dates, no text
    assert "passenger_id" not in json.dumps([s.params for s in run.steps])


def test_a_tried_template_is_not_planned_again_even_if_it_failed(planner):
    run = through_baseline(planner)
    linear = advance(planner, run, verdict=Verdict.FAILED)
    assert linear.template_id == "linear"
    task = next_task(planner, run)
    assert task.template_id == "lightgbm"
    assert (task.template_id, task.params) != (linear.template_id, linear.params)


def test_failed_setup_is_not_retried_and_the_run_ends(planner):
    run = view()
    advance(planner, run, verdict=Verdict.FAILED)
    reply = plan(planner, run)
    assert reply.done and not reply.tasks
    assert reply.reason


def test_final_is_planned_when_one_step_is_left(planner):
    run = through_baseline(planner)
    run.steps_left = 2
    assert next_task(planner, run).kind == "model"
    run.steps_left = 1
    task = next_task(planner, run)
    assert task.template_id == "final" and task.kind == "final"
    assert task.parent == run.best_step


def test_final_is_planned_when_time_is_short(planner):
    run = through_baseline(planner, baseline_duration=10.0)
    run.time_left_s = 1000.0
    assert next_task(planner, run).kind == "model"
    # refit (about 1.5 x the best step + 5 s) plus one more 10 s step does not fit in 12 s
    run.time_left_s = 12.0
    task = next_task(planner, run)
    assert task.template_id == "final"
    assert task.parent == run.best_step


def test_no_final_without_a_model_to_refit(planner):
    run = view(steps_left=1)
    assert next_task(planner, run).template_id == "setup"


def test_done_after_final(planner):
    run = through_baseline(planner)
    run.steps_left = 1
    advance(planner, run)  # the final step, DONE
    assert run.steps[-1].kind == "final"
    run.steps_left = 30
    reply = plan(planner, run)
    assert reply.done and reply.tasks == []


def _simulate_upto(share: float, steps: int) -> RunView:
    planner = Planner(TEMPLATES, explore_share=share)
    run = view(steps_left=steps)
    for _ in range(steps - 1):
        reply = plan(planner, run)
        if reply.done:
            break
        (task,) = reply.tasks
        verdict = (
            Verdict.DONE
            if not task.judged
            else Verdict.ACCEPTED
            if len(run.steps) % 2 == 0 or task.kind == "baseline"
            else Verdict.REJECTED
        )
        m = metrics(0.6 + 0.001 * len(run.steps)) if task.judged else None
        run.steps.append(summary(len(run.steps), task, verdict, m))
        if verdict == Verdict.ACCEPTED:
            run.best_step = len(run.steps) - 1
        run.steps_left -= 1
    return run


def _explore_step_share(run: RunView) -> float:
    later = [s for s in run.steps if s.kind not in (*SETUP_KINDS, "baseline", "model", "final")]
    return sum(s.kind == "explore" for s in later) / len(later)


@pytest.mark.parametrize("share", [0.0, 0.3, 0.6, 1.0])
def test_exploration_takes_the_configured_share_of_steps(share):
    run = _simulate_upto(share, 60)
    kinds = [s.kind for s in run.steps]
    assert kinds[:5] == [*SETUP_KINDS, "baseline"]
    first_explore = kinds.index("explore") if "explore" in kinds else len(kinds)
    assert "model" not in kinds[first_explore:], "every model family is compared before exploring"
    measured = _explore_step_share(run)
    if share in (0.0, 1.0):
        assert measured == share
    else:  # the bandit moves the share by the kept rates, within a factor of two
        assert share / 2 - 0.05 <= measured <= min(0.95, share * 2) + 0.05, measured


def test_explore_samples_are_recorded_with_their_parameters_and_build_on_a_kept_model():
    run = _simulate_upto(1.0, 40)
    samples = [s for s in run.steps if s.kind == "explore"]
    assert len(samples) >= 10
    assert len({json.dumps(s.params["sampled"], sort_keys=True) for s in samples}) == len(samples)
    by_id = {s.id: s for s in run.steps}
    for s in samples:
        assert by_id[s.parent].verdict == Verdict.ACCEPTED
        assert s.params["change"]["params"].items() >= s.params["sampled"].items()


def test_exploration_is_reproducible():
    first, second = _simulate_upto(0.5, 40), _simulate_upto(0.5, 40)
    assert [s.params for s in first.steps] == [s.params for s in second.steps]


def test_refit_reserve_counts_folds_that_ran_two_at_a_time_as_sequential_work():
    from dsassist.messages import Metrics, RunView, StepSummary, Verdict

    def view(duration: float, fit_time: float) -> RunView:
        m = Metrics(
            metric="roc_auc", higher_is_better=True, folds=[0.8], mean=0.8, std=0.0, fit_time_s=fit_time
        )
        best = StepSummary(
            id=4,
            parent=3,
            template_id="lightgbm",
            kind="model",
            hypothesis="h",
            verdict=Verdict.ACCEPTED,
            metrics=m,
            duration_s=duration,
        )
        return RunView(
            task="binary", metric="roc_auc", steps=[best], best_step=4, time_left_s=60, steps_left=9
        )

    assert view(duration=4.0, fit_time=3.0).refit_reserve_s() == 1.5 * 4.0 + 5.0  # folds in turn
    assert view(duration=2.0, fit_time=3.6).refit_reserve_s() == 1.5 * 3.6 + 5.0  # two at a time
    assert RunView(task="binary", metric="roc_auc", time_left_s=60, steps_left=9).refit_reserve_s() == 0.0


# ---- parallel branches: the planner sees the running tasks ------------------------------


def test_set_up_steps_wait_for_the_running_ones(planner):
    run = view()
    advance(planner, run)  # setup done; the profile is next
    running = next_task(planner, run)
    run.running = [running]
    reply = plan(planner, run)
    assert reply.wait and not reply.tasks, "the guard needs the profile: nothing starts beside it"


def test_judged_steps_start_beside_running_ones_with_other_hypotheses(planner):
    run = through_baseline(planner)
    first = next_task(planner, run)
    run.running = [first]
    second = next_task(planner, run)
    assert second.judged and second.parent == run.best_step
    assert (second.template_id, second.params) != (first.template_id, first.params)
    run.running.append(second)
    third = next_task(planner, run)
    assert (third.template_id, third.params) not in [(t.template_id, t.params) for t in run.running]


def test_nothing_starts_beside_a_running_baseline(planner):
    run = view()
    for _ in SETUP_KINDS:
        advance(planner, run)
    baseline = next_task(planner, run)
    run.running = [baseline]
    assert plan(planner, run).wait, "model families need the baseline's score as their parent"


def test_the_final_refit_waits_for_the_running_steps(planner):
    run = through_baseline(planner)
    run.running = [next_task(planner, run)]
    run.steps_left = 1
    reply = plan(planner, run)
    assert reply.wait and not reply.tasks
    run.running = []
    assert next_task(planner, run).kind == "final"


def test_parallel_bayesian_samples_differ_from_the_running_ones():
    run = _simulate_upto(1.0, 12)
    run.steps_left = 20
    explorer = Planner(TEMPLATES, explore_share=1.0)
    first = next_task(explorer, run)
    assert first.kind == "explore"
    run.running = [first]
    second = next_task(explorer, run)
    assert second.kind == "explore"
    assert second.params["sampled"] != first.params["sampled"]
    assert second.params["trial"] == first.params["trial"] + 1

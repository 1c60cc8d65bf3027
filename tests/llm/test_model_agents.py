"""The model-backed agents through their message interface, against the scripted server."""

from __future__ import annotations

import json

import pytest
from scripted_llm import Reply, ScriptedLLM

from dsassist.agents import ModelCoder, ModelEvaluator, ModelPlanner, ModelReflector
from dsassist.llm.router import Router
from dsassist.llm.settings import LLMSettings
from dsassist.messages import (
    AnswerRequest,
    Attempt,
    ErrorInfo,
    EvaluateRequest,
    Execution,
    FixRequest,
    KernelState,
    PlanRequest,
    ReflectRequest,
    RunView,
    StepSummary,
    Task,
    Variable,
    Verdict,
)
from dsassist.templates import load_templates

FAILING = "ratio = df['a'].sum() / df['b'].sum()\nprint(ratio.round(2))\n"
STATE = KernelState(variables=[Variable(name="df", type="DataFrame", shape="(10, 2)", columns=["a", "b"])])
TASK = Task(template_id="question", kind="analysis", hypothesis="Ratio of a to b", judged=False)


@pytest.fixture
def llm():
    with ScriptedLLM(responder=lambda _: Reply(status=500)) as server:
        yield server


@pytest.fixture
def router(llm):
    settings = LLMSettings.model_validate(
        {
            "providers": {"local": {"kind": "openai", "base_url": llm.openai_url}},
            "models": {
                "cheap": {
                    "provider": "local",
                    "name": "small",
                    "input_usd_per_mtok": 0.1,
                    "output_usd_per_mtok": 0.4,
                },
                "strong": {
                    "provider": "local",
                    "name": "large",
                    "input_usd_per_mtok": 2,
                    "output_usd_per_mtok": 8,
                },
            },
            "routes": {
                r: ["cheap", "strong"] for r in ("planner", "coder", "fixer", "evaluator", "reflector")
            },
            "retries": 0,
            "backoff_s": 0,
        }
    )
    return Router(settings)


def fix_request(attempt: int, tried: list[str] | None = None) -> FixRequest:
    error = ErrorInfo(name="AttributeError", value="'float' object has no attribute 'round'", traceback=[])
    return FixRequest(
        task=TASK,
        code=FAILING,
        execution=Execution(ok=False, error=error),
        feedback="AttributeError: 'float' object has no attribute 'round' (line 2: print(ratio.round(2)))",
        attempt=attempt,
        state=STATE,
        tried=tried or [FAILING],
    )


def test_fix_the_rules_cannot_make_goes_to_the_fixer_route(llm, router):
    llm.add("small", "```python\nratio = df['a'].sum() / df['b'].sum()\nprint(round(ratio, 2))\n```")
    cell = ModelCoder(load_templates(), router).handle(fix_request(attempt=1))
    assert cell.rule == "model-fix" and "round(ratio, 2)" in cell.code
    assert [r.model for r in llm.requests] == ["small"]
    assert "has no attribute 'round'" in llm.requests[0].last_user  # the traceback's message


def test_fix_after_two_failures_goes_to_the_strongest_model(llm, router):
    llm.add("large", "```python\nprint(round(df['a'].sum() / df['b'].sum(), 2))\n```")
    cell = ModelCoder(load_templates(), router).handle(fix_request(attempt=2))
    assert cell.rule == "model-fix"
    assert [r.model for r in llm.requests] == ["large"]


@pytest.mark.parametrize("loop", [FAILING, "# same again\n" + FAILING.replace("\n", "  \n")])
def test_a_fixer_that_repeats_a_tried_cell_is_stopped(llm, router, loop):
    llm.add("small", f"```python\n{loop}```")
    cell = ModelCoder(load_templates(), router).handle(fix_request(attempt=1))
    assert cell.gave_up and cell.rule == "model-loop"


def test_template_cells_cost_nothing(llm, router):
    coder = ModelCoder(load_templates(), router)
    task = Task(template_id="guard", kind="guard", hypothesis="guard", judged=False)
    from dsassist.messages import CodeRequest

    cell = coder.handle(CodeRequest(task=task, state=STATE))
    assert "feature_columns" in cell.code and llm.requests == []


def view(**options) -> RunView:
    steps = [
        StepSummary(
            id=i, parent=i - 1 if i else None, template_id=k, kind=k, hypothesis=k, verdict=Verdict.DONE
        )
        for i, k in enumerate(["setup", "profile", "guard"])
    ]
    return RunView(
        task="binary", metric="roc_auc", steps=steps, time_left_s=60, steps_left=20, options=options
    )


def test_invalid_json_plan_is_reasked_then_used(llm, router):
    good = json.dumps({"subtasks": [{"hypothesis": "Survival by sex"}, {"hypothesis": "Survival by class"}]})
    llm.add("small", '{"subtasks": [{"hypothesis": "Survival by sex"', '{"steps": ["a"]}', good)
    planner = ModelPlanner(load_templates(), router)
    run = view(question="Who survived?", target="survived", seed=0, task="binary", metric="roc_auc", path="x")
    plans = [planner.handle(PlanRequest(run=run)) for _ in range(2)]
    assert [p.tasks[0].hypothesis for p in plans] == ["Survival by sex", "Survival by class"]
    assert all(p.tasks[0].kind == "analysis" and p.tasks[0].parent == 2 for p in plans)
    reasks = [r.last_user for r in llm.requests[1:]]
    assert "invalid JSON" in reasks[0] and "subtasks" in reasks[1]


def test_planner_without_a_usable_reply_falls_back_to_the_offline_plan(llm, router):
    planner = ModelPlanner(load_templates(), router)
    run = view(question="Who survived?", target="survived", seed=0, task="binary", metric="roc_auc", path="x")
    plan = planner.handle(PlanRequest(run=run))
    asked = len(llm.requests)
    assert asked == 2 and plan.tasks[0].kind != "analysis"  # the offline policy's next step
    planner.handle(PlanRequest(run=run))
    assert len(llm.requests) == asked  # the question is not asked again at every step


def test_evaluator_sends_an_unanswered_subtask_back_with_feedback(llm, router):
    llm.add("small", '{"answered": false, "feedback": "print the ratio, not the sums"}')
    request = EvaluateRequest(
        task=TASK, execution=Execution(ok=True, stdout="12 30"), code="print(a, b)", attempt=1, max_attempts=2
    )
    evaluation = ModelEvaluator(router).handle(request)
    assert evaluation.verdict == Verdict.RETRY and "print the ratio" in evaluation.feedback


def test_answer_falls_back_to_the_offline_summary(llm, router):
    answer = ModelEvaluator(router).handle(AnswerRequest(question="q", evidence=[], summary="offline words"))
    assert answer.text == "offline words"


def test_reflector_asks_only_for_analysis_and_failed_steps(llm, router):
    llm.add("small", "The ratio of a to b is 0.4.")
    reflector = ModelReflector(router)
    execution = Execution(ok=True, stdout="0.4")
    for kind, expected in (("model", 0), ("analysis", 1)):
        step = StepSummary(id=5, parent=4, template_id="x", kind=kind, hypothesis="h", verdict=Verdict.DONE)
        reflection = reflector.handle(
            ReflectRequest(step=step, attempts=[Attempt(code="c", execution=execution)])
        )
        assert len(llm.requests) == expected
    assert reflection.lesson == "The ratio of a to b is 0.4." and reflection.lesson in reflection.note


def test_a_prompt_only_template_is_coded_by_the_model_from_its_skeleton(llm, router):
    from dsassist.messages import CodeRequest
    from dsassist.templates import Template

    template = Template(
        id="ratio",
        kind="feature",
        hypothesis="the ratio of a to b",
        code="",
        applies=lambda run: [{}],
        prompt="Compute $hypothesis without dividing by zero.",
        judged=False,
    )
    llm.add("small", "```python\nprint(df['a'].sum() / max(df['b'].sum(), 1))\n```")
    task = template.task({}, None)
    cell = ModelCoder([template], router).handle(
        CodeRequest(task=task, state=STATE, history="step 0 [done] load")
    )
    assert cell.rule == "model" and "max(df['b'].sum(), 1)" in cell.code
    sent = llm.requests[0].last_user
    assert "Compute the ratio of a to b without dividing by zero." in sent
    assert "df: DataFrame (10, 2) columns [a, b]" in sent and "step 0 [done] load" in sent


def test_code_that_differs_only_inside_a_string_is_not_a_loop(llm, router):
    failing = "print(df['a#1'].sum() / 0)\n"
    llm.add("small", "```python\nprint(df['a#2'].sum())\n```")
    request = fix_request(attempt=1).model_copy(update={"code": failing, "tried": [failing]})
    assert ModelCoder(load_templates(), router).handle(request).rule == "model-fix"


def test_a_resumed_run_finishes_the_planned_subtasks_without_asking_again(llm, router):
    plan = ["Survival by sex", "Survival by class", "Survival by age"]
    run = view(question="Who survived?", target="survived", seed=0, task="binary", metric="roc_auc", path="x")
    run.steps.append(
        StepSummary(
            id=3,
            parent=2,
            template_id="question",
            kind="analysis",
            hypothesis=plan[0],
            params={"plan": plan},
            verdict=Verdict.DONE,
        )
    )
    planner = ModelPlanner(load_templates(), router)  # a new planner, as after a resume
    assert planner.handle(PlanRequest(run=run)).tasks[0].hypothesis == plan[1]
    assert planner.handle(PlanRequest(run=run)).tasks[0].hypothesis == plan[2]
    assert llm.requests == []

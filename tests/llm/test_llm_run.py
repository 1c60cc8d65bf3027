"""A whole run in LLM mode, through the command line, against a scripted local model server."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict, deque
from pathlib import Path

import pytest
from scripted_llm import Reply, Request, ScriptedLLM
from typer.testing import CliRunner

from dsassist.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()
KEY = "sk-test-run-5f3a9c0e7b"
QUESTION = "Which passengers survived, and how strongly do sex and class matter?"
SUBTASKS = ["Survival rate by sex", "Survival rate by passenger class"]
MALFORMED = "Sure! I would group the passengers by sex and compare their survival."
FAILING = "```python\nshare = int(df['survived'].sum()) / 0\nprint(share)\n```"
FIXED = "```python\nrates = df.groupby('pclass')['survived'].mean()\nprint(rates.round(3))\n```"
ANSWER = "Women survived far more often than men (step 3), and first class more than third (step 4)."


def analyst(scripted: dict[str, deque[str]]):
    """Replies by role, as a capable model would; scripted replies (faults) go first."""

    def reply(request: Request) -> Reply:
        if scripted[request.role]:
            return Reply(scripted[request.role].popleft())
        if request.role == "planner":
            return Reply(json.dumps({"subtasks": [{"hypothesis": h} for h in SUBTASKS]}))
        if request.role == "coder":
            return Reply(
                "Here is the cell:\n```python\nrates = df.groupby('sex')['survived'].mean()\n"
                "print(rates.round(3))\n```"
            )
        if request.role == "fixer":
            return Reply(FIXED)
        if request.role == "evaluator" and "Decide whether" in request.system:
            return Reply('{"answered": true, "finding": "female 0.742, male 0.189"}')
        if request.role == "evaluator":
            return Reply(ANSWER)
        return Reply("Survival differs sharply between the groups.")

    return reply


def write_config(folder: Path, llm: ScriptedLLM, usd: float) -> Path:
    path = folder / "dsassist.toml"
    path.write_text(
        f"""
[llm.providers.local]
kind = "openai"
base_url = "{llm.openai_url}"
api_key_env = "DSASSIST_TEST_KEY"

[llm.models.cheap]
provider = "local"
name = "qwen2.5-coder-7b-instruct"
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60

[llm.models.strong]
provider = "local"
name = "gpt-4.1"
input_usd_per_mtok = 2.00
output_usd_per_mtok = 8.00

[llm.routes]
planner = ["cheap"]
coder = ["cheap", "strong"]
fixer = ["strong"]
evaluator = ["cheap"]
reflector = ["cheap"]

[llm]
backoff_s = 0.01

[budget]
usd = {usd}
wall = "90s"
"""
    )
    return path


def run(data: Path, out: Path, *extra: str):
    args = ["run", data, "--target", "survived", "--out", out, "--max-steps", "12", "--seed", "0", *extra]
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory, example):
    folder = tmp_path_factory.mktemp("llm")
    scripted: dict[str, deque[str]] = defaultdict(deque)
    scripted["coder"].extend(
        [MALFORMED, "```python\nrates = df.groupby('sex')['survived'].mean()\n```", FAILING]
    )
    with pytest.MonkeyPatch.context() as mp, ScriptedLLM(responder=analyst(scripted)) as llm:
        mp.setenv("DSASSIST_TEST_KEY", KEY)
        config = write_config(folder, llm, usd=0.50)
        result = run(example("titanic"), folder / "run", "--config", config, "--question", QUESTION)
    assert result.exit_code == 0, result.output
    return folder / "run", llm, result.output


def rows(out: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(out / "provenance.db") as c:
        return c.execute(sql).fetchall()


def test_question_is_broken_into_subtasks_run_as_steps(llm_run):
    out, llm, _ = llm_run
    steps = rows(out, "select hypothesis, verdict from steps where kind = 'analysis' order by id")
    assert steps == [(SUBTASKS[0], "done"), (SUBTASKS[1], "done")]
    assert len(llm.calls("planner")) == 1


def test_malformed_reply_is_reasked_not_executed(llm_run):
    out, llm, _ = llm_run
    second = llm.calls("coder")[1]
    assert "cannot be used" in second.last_user and "no ```python code block" in second.last_user
    codes = [c for (c,) in rows(out, "select code from executions")]
    assert not any("I would group" in c for c in codes)
    outcomes = [o for (o,) in rows(out, "select outcome from llm_calls where role = 'coder' order by id")]
    assert outcomes[:2] == ["unusable: the reply has no ```python code block", "ok"]


def test_failing_cell_is_fixed_by_a_recorded_fixer_call(llm_run):
    out, _, _ = llm_run
    ((step_id, rule),) = rows(out, "select step_id, rule from fixes")
    assert rule == "model-fix"
    calls = rows(out, f"select model, outcome from llm_calls where role = 'fixer' and step_id = {step_id}")
    assert calls == [("strong", "ok")]
    attempts = rows(out, f"select ok, error_name from executions where step_id = {step_id} order by attempt")
    assert attempts == [(0, "ZeroDivisionError"), (1, None)]


def test_routes_follow_the_config(llm_run):
    out, llm, _ = llm_run
    by_role = defaultdict(set)
    for request in llm.requests:
        by_role[request.role].add(request.model)
    assert by_role["planner"] == by_role["evaluator"] == by_role["reflector"] == {"qwen2.5-coder-7b-instruct"}
    assert by_role["fixer"] == {"gpt-4.1"}
    recorded = set(rows(out, "select role, model from llm_calls"))
    assert ("fixer", "strong") in recorded and ("planner", "cheap") in recorded


def test_spend_is_within_budget_and_matches_the_recorded_tokens(llm_run):
    out, _, _ = llm_run
    prices = {"cheap": (0.15, 0.60), "strong": (2.00, 8.00)}
    calls = rows(out, "select model, tokens_in, tokens_out, cost_usd from llm_calls")
    spent = sum((i * prices[m][0] + o * prices[m][1]) / 1e6 for m, i, o, _ in calls)
    assert spent == pytest.approx(sum(c for *_, c in calls))
    assert 0 < spent <= 0.50


def test_keys_never_reach_the_run_folder(llm_run):
    out, _, output = llm_run
    assert KEY not in output
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_answer_and_cost_table_in_the_report(llm_run):
    out, _, _ = llm_run
    report = (out / "report.md").read_text()
    assert ANSWER in report
    assert "## Model calls and cost" in report and "| fixer | strong |" in report
    assert json.loads((out / "result.json").read_text())["answer"] == ANSWER


def test_cost_command_prints_spend_per_role_and_model(llm_run):
    out, _, _ = llm_run
    result = runner.invoke(app, ["cost", str(out)])
    assert result.exit_code == 0, result.output
    for word in ("planner", "coder", "fixer", "evaluator", "reflector", "cheap", "strong", "total"):
        assert word in result.output


def test_llm_run_folder_has_the_offline_layout(llm_run, tmp_path, example):
    out, _, _ = llm_run
    offline = tmp_path / "offline"
    result = run(example("titanic"), offline, "--budget", "60s")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in offline.iterdir())
    for folder in ("steps", "plots", "checkpoints"):
        assert any((out / folder).iterdir()) and any((offline / folder).iterdir())
    assert "no language model was called" in (offline / "report.md").read_text()


def test_open_question_without_target(tmp_path, example, monkeypatch):
    monkeypatch.setenv("DSASSIST_TEST_KEY", KEY)
    scripted: dict[str, deque[str]] = defaultdict(deque)
    scripted["planner"].append(json.dumps({"subtasks": [{"hypothesis": "Mean fare of all passengers"}]}))
    scripted["coder"].append("```python\nprint(round(df['fare'].mean(), 2))\n```")
    scripted["evaluator"].extend(['{"answered": true, "finding": "mean fare 32.2"}', "@mean_fare[32.2]"])
    with ScriptedLLM(responder=analyst(scripted)) as llm:
        config = write_config(tmp_path, llm, usd=0.50)
        out = tmp_path / "run"
        args = ["run", example("titanic"), "--out", out, "--config", config, "-q", "What is the mean fare?"]
        result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "result.json").read_text())["answer"] == "@mean_fare[32.2]"
    steps = rows(out, "select template_id, kind, verdict from steps order by id")
    assert steps == [("load", "setup", "done"), ("question", "analysis", "done")]
    (stdout,) = rows(out, "select stdout from executions where step_id = 1")[0]
    assert stdout.strip() == "32.2"  # the model's cell really ran in the kernel
    assert "@mean_fare[32.2]" in (out / "report.md").read_text()


def test_open_question_offline_is_refused_with_one_line(tmp_path, example, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no dsassist.toml here
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(example("titanic")), "--out", str(out), "-q", "Mean fare?"])
    assert result.exit_code == 2
    assert "answered by a language model" in result.output and not out.exists()


def test_spent_budget_falls_back_offline_and_the_run_ends_with_its_report(tmp_path, example, monkeypatch):
    monkeypatch.setenv("DSASSIST_TEST_KEY", KEY)
    budget = 0.003  # room for a few cheap calls at most: the rest of the run is offline
    with ScriptedLLM(responder=analyst(defaultdict(deque))) as llm:
        config = write_config(tmp_path, llm, usd=budget)
        out = tmp_path / "run"
        result = run(example("titanic"), out, "--config", config, "--question", QUESTION, "--budget", "60s")
    assert result.exit_code == 0, result.output
    prices = {"cheap": (0.15, 0.60), "strong": (2.00, 8.00)}
    calls = rows(out, "select model, tokens_in, tokens_out from llm_calls")
    assert 0 < sum((i * prices[m][0] + o * prices[m][1]) / 1e6 for m, i, o in calls) <= budget
    assert (out / "report.md").is_file() and (out / "model.pkl").is_file()
    verdicts = [v for (v,) in rows(out, "select verdict from steps where kind = 'model'")]
    assert "accepted" in verdicts  # the offline policy carried on

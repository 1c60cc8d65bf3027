"""Routing, escalation, retries, re-asks and the budget, through the real SDKs against a local server."""

from __future__ import annotations

import pytest
from scripted_llm import Reply, ScriptedLLM

from dsassist.llm.parse import ParseError, code_cell
from dsassist.llm.prompts import Prompt
from dsassist.llm.router import LLMCall, NoModel, Router
from dsassist.llm.settings import LLMSettings

KEY = "sk-test-0123456789abcdef"
CODE = "```python\nprint(df.shape)\n```"
PROMPT = Prompt("write-cell", 1, "Role: coder. Reply with one cell.", "Subtask: show the shape of df")


@pytest.fixture
def llm(monkeypatch):
    monkeypatch.setenv("DSASSIST_TEST_KEY", KEY)
    with ScriptedLLM(responder=lambda _: Reply(CODE)) as server:
        yield server


def settings(llm: ScriptedLLM, **overrides) -> LLMSettings:
    raw = {
        "providers": {
            "local": {"kind": "openai", "base_url": llm.openai_url, "api_key_env": "DSASSIST_TEST_KEY"},
            "claude": {
                "kind": "anthropic",
                "base_url": llm.anthropic_url,
                "api_key_env": "DSASSIST_TEST_KEY",
                "timeout_s": 0.5,
            },
        },
        "models": {
            "cheap": {
                "provider": "local",
                "name": "qwen-7b",
                "input_usd_per_mtok": 0.15,
                "output_usd_per_mtok": 0.6,
            },
            "strong": {
                "provider": "local",
                "name": "gpt-4.1",
                "input_usd_per_mtok": 2.0,
                "output_usd_per_mtok": 8.0,
            },
            "claude": {
                "provider": "claude",
                "name": "claude-x",
                "input_usd_per_mtok": 3,
                "output_usd_per_mtok": 15,
            },
        },
        "routes": {"coder": ["cheap", "strong"], "fixer": ["claude"], "planner": ["cheap"]},
        "backoff_s": 0.01,
        "max_reasks": 1,
    }
    for key, value in overrides.items():
        raw[key] = value
    return LLMSettings.model_validate(raw)


def router(llm, budget=None, **overrides) -> tuple[Router, list[LLMCall]]:
    calls: list[LLMCall] = []
    return Router(settings(llm, **overrides), budget, calls.append, redact=(KEY,)), calls


def parse(text: str) -> str:
    return code_cell(text, {"df"})


def test_call_goes_to_the_cheapest_model_and_is_recorded(llm):
    r, calls = router(llm)
    assert r.ask("coder", PROMPT, parse) == "print(df.shape)\n"
    assert [q.model for q in llm.requests] == ["qwen-7b"]
    assert llm.requests[0].headers["authorization"] == f"Bearer {KEY}"  # the key is sent...
    (call,) = calls
    assert (call.role, call.model, call.outcome, call.retries) == ("coder", "cheap", "ok", 0)
    assert (call.prompt_template, call.prompt_version) == ("write-cell", 1)
    assert "Subtask: show the shape of df" in call.prompt and CODE in call.response
    assert call.tokens_in > 0 and call.tokens_out > 0
    assert call.cost_usd == pytest.approx((call.tokens_in * 0.15 + call.tokens_out * 0.6) / 1e6)
    assert r.spent_usd == pytest.approx(call.cost_usd)


def test_malformed_reply_is_reasked_with_the_reason_then_escalated(llm):
    llm.add("qwen-7b", "Sure! Just print the shape.", "```python\nprint(dff.shape)\n```")
    llm.add("gpt-4.1", CODE)
    r, calls = router(llm)
    assert r.ask("coder", PROMPT, parse) == "print(df.shape)\n"
    assert [q.model for q in llm.requests] == ["qwen-7b", "qwen-7b", "gpt-4.1"]
    reask = llm.requests[1].last_user
    assert "cannot be used" in reask and "no ```python code block" in reask
    assert [c.outcome.split(":")[0] for c in calls] == ["unusable", "unusable", "ok"]
    assert "dff" in calls[1].outcome  # code for a variable the kernel does not hold


def test_transient_faults_are_retried_with_backoff_then_the_next_model(llm):
    llm.add("qwen-7b", Reply(status=429, retry_after_s=0.01), Reply(status=503), Reply(status=500))
    llm.add("gpt-4.1", Reply(status=502), CODE)
    r, calls = router(llm, retries=2)
    assert r.ask("coder", PROMPT, parse) == "print(df.shape)\n"
    assert [(c.model, c.outcome, c.retries) for c in calls] == [
        ("cheap", "http 429", 0),
        ("cheap", "http 503", 1),
        ("cheap", "http 500", 2),
        ("strong", "http 502", 0),
        ("strong", "ok", 1),
    ]
    assert sum(c.cost_usd for c in calls) == pytest.approx(calls[-1].cost_usd)  # failures are free


def test_timeout_is_retried_recorded_and_charged_its_worst_case(llm):
    llm.add("claude-x", Reply(CODE, delay_s=2.0), CODE)
    r, calls = router(llm, retries=1)
    assert r.ask("fixer", PROMPT, parse) == "print(df.shape)\n"
    assert [c.outcome for c in calls] == ["timeout", "ok"]
    assert calls[0].tokens_out == 2048 and calls[0].cost_usd > calls[1].cost_usd  # may have been billed
    assert r.spent_usd == pytest.approx(calls[0].cost_usd + calls[1].cost_usd)
    assert llm.requests[-1].api == "anthropic" and KEY in " ".join(llm.requests[-1].headers.values())


@pytest.mark.parametrize(
    "reply",
    [
        Reply("I can't help with that.", refusal=True),
        Reply("I'm sorry, but I cannot help with this request."),
    ],
)
def test_refusal_moves_on_without_reasking(llm, reply):
    llm.add("qwen-7b", reply)
    llm.add("gpt-4.1", CODE)
    r, calls = router(llm)
    assert r.ask("coder", PROMPT, parse) == "print(df.shape)\n"
    assert [c.outcome for c in calls] == ["refused", "ok"]


def test_anthropic_refusal_stop_reason(llm):
    llm.add("claude-x", Reply("No.", refusal=True))
    r, calls = router(llm)
    with pytest.raises(NoModel, match="refused"):
        r.ask("fixer", PROMPT, parse)
    assert [c.outcome for c in calls] == ["refused"]


def test_high_priority_starts_at_the_strongest_model(llm):
    r, _ = router(llm)
    r.ask("coder", PROMPT, parse, level=-1)
    assert [q.model for q in llm.requests] == ["gpt-4.1"]


def test_unrouted_role_and_exhausted_route_fall_back(llm):
    r, _ = router(llm)
    with pytest.raises(NoModel, match="no model is routed to the reflector"):
        r.ask("reflector", PROMPT, parse)
    llm.add("qwen-7b", Reply(status=400))
    with pytest.raises(NoModel, match="cheap: no reply"):
        r.ask("planner", PROMPT, parse)


def test_a_call_that_could_overrun_the_budget_is_not_made(llm):
    # strong's worst case (2048 output tokens at $8/M = $0.016) does not fit; cheap's does
    r, _ = router(llm, budget=0.01)
    r.ask("coder", PROMPT, parse, level=-1)
    assert [q.model for q in llm.requests] == ["qwen-7b"]
    r.spent_usd = 0.0099
    with pytest.raises(NoModel, match="over budget"):
        r.ask("coder", PROMPT, parse)
    assert len(llm.requests) == 1  # nothing was sent


def test_low_budget_moves_every_call_down_to_the_cheapest(llm):
    r, _ = router(llm, budget=1.0)
    r.spent_usd = 0.85
    r.ask("coder", PROMPT, parse, level=-1)
    assert [q.model for q in llm.requests] == ["qwen-7b"]


def test_spend_never_exceeds_the_budget(llm):
    def chatty(request):  # long replies and a malformed one now and then
        return Reply("x" * 3000) if len(llm.requests) % 3 == 0 else Reply(CODE + " " + "y" * 4000)

    llm.responder = chatty
    budget = 0.05
    r, calls = router(llm, budget=budget)
    models = settings(llm).models
    answered = 0
    for _ in range(400):
        try:
            r.ask("coder", PROMPT, parse, level=-1)
            answered += 1
        except NoModel:
            break
    spent = sum(models[c.model].cost(c.tokens_in, c.tokens_out) for c in calls)
    assert answered > 5
    assert spent <= budget
    assert spent == pytest.approx(r.spent_usd)


def test_keys_are_redacted_from_records(llm):
    llm.add("qwen-7b", f"```python\nprint('{KEY}')\n```")
    r, calls = router(llm)
    leaky = Prompt("write-cell", 1, "Role: coder.", f"the output was {KEY}")
    r.ask("coder", leaky, lambda text: text)
    assert KEY not in calls[0].prompt and KEY not in calls[0].response
    assert "[redacted]" in calls[0].prompt


def test_parse_error_messages():
    with pytest.raises(ParseError, match="2 code blocks"):
        code_cell("```python\na = 1\n```\n```python\nb = 2\n```", set())
    with pytest.raises(ParseError, match="does not parse"):
        code_cell("```python\nfor\n```", set())
    ok = "```python\nimport numpy as np\nz = [v for v in range(3)]\nprint(np.mean(z), df)\n```"
    assert code_cell(ok, {"df"}).startswith("import numpy")


@pytest.mark.parametrize(
    "reply",
    [
        Reply(raw="<html>502 Bad Gateway</html>"),
        Reply(raw="{not json"),
        Reply(raw='{"id": "x", "choices": [{"index": 0, "message": null, "finish_reason": "stop"}]}'),
    ],
)
def test_a_reply_that_is_not_the_apis_json_moves_on(llm, reply):
    llm.add("qwen-7b", reply)
    r, calls = router(llm)
    assert r.ask("coder", PROMPT, parse) == "print(df.shape)\n"
    assert calls[0].outcome.startswith("malformed reply") and calls[1].model == "strong"


def test_a_reply_without_usage_is_charged_its_worst_case(llm):
    llm.add("qwen-7b", Reply(CODE, usage=False))
    r, calls = router(llm)
    r.ask("coder", PROMPT, parse)
    assert calls[0].tokens_out == 2048 and calls[0].tokens_in >= len(PROMPT.user)
    assert r.spent_usd == pytest.approx(calls[0].cost_usd) and calls[0].cost_usd > 0


def test_a_model_that_ignores_max_tokens_is_not_used_again(llm):
    llm.add("qwen-7b", Reply(CODE, tokens_out=50_000))
    r, calls = router(llm)
    with pytest.warns(UserWarning, match="cheap wrote more than max_output_tokens"):
        r.ask("coder", PROMPT, parse)
    r.ask("coder", PROMPT, parse)
    assert [q.model for q in llm.requests] == ["qwen-7b", "gpt-4.1"]
    assert calls[0].tokens_out == 50_000  # recorded as reported


def test_plain_text_refusal_is_not_taken_as_an_answer(llm):
    llm.add("qwen-7b", "I'm sorry, but I can't help with that request.")
    llm.add("gpt-4.1", "The mean fare is 32.2.")
    r, calls = router(llm)
    assert r.ask("coder", PROMPT, lambda text: text) == "The mean fare is 32.2."
    assert [c.outcome for c in calls] == ["refused", "ok"]


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),  # in the past
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_headers(headers, seconds):
    from dsassist.llm.providers import retry_after

    assert retry_after(headers) == seconds


def test_ipython_names_are_known():
    assert code_cell("```python\ndisplay(df.head())\n```", {"df"}) == "display(df.head())\n"

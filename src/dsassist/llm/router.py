"""Cost-aware routing: each call goes to the cheapest model that will do, within the budget.

A role's route lists models cheapest first. A call starts at the first (or, when it matters
most, the last), retries timeouts, 429 and 5xx with backoff, re-asks a reply that cannot be
used with the reason, and escalates to the next model when one will not do. Before every
call the router checks the worst case: the prompt's bytes (no token is shorter than a byte)
plus the most output tokens allowed, at the model's prices. A call that could overrun the
budget is not made; a cheaper model is tried, and when none fits the caller falls back to
the offline policy. Every call is recorded, whatever its outcome.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from dsassist.llm.parse import ParseError
from dsassist.llm.prompts import Prompt
from dsassist.llm.providers import CallError, Client, Completion, TransientError, make_client
from dsassist.llm.settings import LLMSettings, Model
from dsassist.messages import LLMCall
from dsassist.store.provenance import now

T = TypeVar("T")

LOW_BUDGET = 0.2  # below this share of the budget left, every call starts at the cheapest model
MESSAGE_OVERHEAD_TOKENS = 16
MAX_RETRY_AFTER_S = 30.0
_REFUSAL = re.compile(r"\s*(i'?m sorry|sorry|i can(no|')t|i won'?t|i am unable|i'm unable|as an ai)", re.I)


class NoModel(Exception):
    """No model in the route gave a usable reply within the budget: use the offline policy."""


class Router:
    def __init__(
        self,
        settings: LLMSettings,
        budget_usd: float | None = None,
        record: Callable[[LLMCall], None] | None = None,
        spent_usd: float = 0.0,
        clients: dict[str, Client] | None = None,
        redact: tuple[str, ...] = (),
    ) -> None:
        self.settings, self.budget_usd, self.spent_usd = settings, budget_usd, spent_usd
        self._record = record or (lambda _: None)
        self.clients = clients or {name: make_client(p) for name, p in settings.providers.items()}
        self.redact = tuple(secret for secret in redact if secret)
        self.overspending: set[str] = set()  # models that ignored max_tokens
        self._warned: set[str] = set()

    def ask(
        self,
        role: str,
        prompt: Prompt,
        parse: Callable[[str], T],
        *,
        level: int = 0,
        step_id: int | None = None,
    ) -> T:
        """The parsed reply of the first model on the route, from `level` up, that gives one.

        `level` -1 means the strongest model of the route (the final pipeline, a fix after
        repeated failures). Raises NoModel when the route is exhausted or the budget spent.
        """
        reasons = []
        for name in self._order(role, level):
            model = self.settings.models[name]
            messages = [{"role": "user", "content": prompt.user}]
            for _ in range(self.settings.max_reasks + 1):
                if not self._fits(model, prompt.system, messages):
                    reasons.append(f"{name}: over budget")
                    break
                reply = self._call(role, name, prompt, messages, step_id)
                if reply is None:
                    reasons.append(f"{name}: no reply")
                    break
                completion, call = reply
                if completion.refused or _refusal(completion.text):  # re-asking rarely helps
                    self._record(call.model_copy(update={"outcome": "refused"}))
                    reasons.append(f"{name}: refused")
                    break
                try:
                    value = parse(completion.text)
                except (ValueError, RecursionError) as exc:  # ParseError, or JSON nested too deep
                    why = str(exc) if isinstance(exc, ParseError) else f"unreadable ({type(exc).__name__})"
                    self._record(call.model_copy(update={"outcome": f"unusable: {why}"}))
                    messages = [
                        *messages,
                        {"role": "assistant", "content": completion.text},
                        {"role": "user", "content": f"That reply cannot be used: {why}. Reply again."},
                    ]
                    continue
                self._record(call)
                return value
            else:
                reasons.append(f"{name}: no usable reply after {self.settings.max_reasks} re-asks")
        reason = "; ".join(reasons) or f"no model is routed to the {role}"
        if role not in self._warned:
            self._warned.add(role)
            warnings.warn(f"{role}: {reason}; the offline policy takes over", stacklevel=2)
        raise NoModel(reason)

    # ---- choosing a model -------------------------------------------------------------

    def _order(self, role: str, level: int) -> list[str]:
        """Escalation order from the starting level, then the cheaper models as a last resort."""
        route = self.settings.route(role)
        if not route:
            return []
        start = len(route) - 1 if level < 0 else min(level, len(route) - 1)
        if self.budget_usd is not None and self.spent_usd >= (1 - LOW_BUDGET) * self.budget_usd:
            start = 0
        order = route[start:] + route[:start][::-1]
        return [name for name in order if name not in self.overspending]

    def left(self) -> float:
        return float("inf") if self.budget_usd is None else self.budget_usd - self.spent_usd

    def _fits(self, model: Model, system: str, messages: list[dict[str, str]]) -> bool:
        return model.cost(_tokens_bound(system, messages), model.max_output_tokens) <= self.left()

    # ---- one call, with retries -----------------------------------------------------

    def _call(
        self, role: str, name: str, prompt: Prompt, messages: list[dict[str, str]], step_id: int | None
    ) -> tuple[Completion, LLMCall] | None:
        """The model's completion and its record (saved by the caller once the reply is judged);
        failed attempts are recorded here."""
        model = self.settings.models[name]
        client = self.clients[model.provider]
        for retry in range(self.settings.retries + 1):
            call = LLMCall(
                role=role,
                model=name,
                model_name=model.name,
                prompt_template=prompt.template,
                prompt_version=prompt.version,
                prompt=self._clean(_transcript(prompt.system, messages)),
                outcome="ok",
                retries=retry,
                step_id=step_id,
                started_at=now(),
            )
            t0 = time.monotonic()
            try:
                completion = client.complete(model.name, prompt.system, messages, model.max_output_tokens)
            except TransientError as exc:
                # a timed-out request may still be billed: charge its worst case
                worst = (_tokens_bound(prompt.system, messages), model.max_output_tokens)
                charged = worst if exc.outcome == "timeout" else (0, 0)
                self._record(self._charge(model, call, *charged, outcome=exc.outcome, latency_s=_since(t0)))
                if retry < self.settings.retries:
                    time.sleep(_backoff(self.settings.backoff_s, retry, exc.retry_after_s))
                continue
            except CallError as exc:
                self._record(call.model_copy(update={"outcome": exc.outcome, "latency_s": _since(t0)}))
                return None
            # a server that does not report usage is charged the worst case
            tokens_in = completion.tokens_in
            if tokens_in is None:
                tokens_in = _tokens_bound(prompt.system, messages)
            tokens_out = completion.tokens_out
            if tokens_out is None:
                tokens_out = model.max_output_tokens
            if tokens_out > model.max_output_tokens:  # it ignores max_tokens: the bound no longer holds
                self.overspending.add(name)
                warnings.warn(f"model {name} wrote more than max_output_tokens: not used again", stacklevel=2)
            done = self._charge(model, call, tokens_in, tokens_out, response=self._clean(completion.text))
            return completion, done.model_copy(update={"latency_s": _since(t0)})
        return None

    def _charge(self, model: Model, call: LLMCall, tokens_in: int, tokens_out: int, **fields: Any) -> LLMCall:
        cost = model.cost(tokens_in, tokens_out)
        self.spent_usd += cost
        return call.model_copy(
            update={"tokens_in": tokens_in, "tokens_out": tokens_out, "cost_usd": cost, **fields}
        )

    def _clean(self, text: str) -> str:
        for secret in self.redact:
            text = text.replace(secret, "[redacted]")
        return text


def _tokens_bound(system: str, messages: list[dict[str, str]]) -> int:
    """No token is shorter than a byte: the prompt's bytes bound its tokens from above."""
    size = len(system.encode()) + sum(len(m["content"].encode()) for m in messages)
    return size + MESSAGE_OVERHEAD_TOKENS * (len(messages) + 1)


def _refusal(text: str) -> bool:
    """A short reply that declines, with no code or JSON in it."""
    return len(text) < 600 and "```" not in text and "{" not in text and bool(_REFUSAL.match(text))


def _transcript(system: str, messages: list[dict[str, str]]) -> str:
    return "\n\n".join([f"[system]\n{system}", *(f"[{m['role']}]\n{m['content']}" for m in messages)])


def _backoff(base: float, retry: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER_S)
    return base * 2**retry


def _since(t0: float) -> float:
    return time.monotonic() - t0

"""One call to a model through its provider's official SDK, with faults sorted for the router.

The SDKs' own retries are switched off: the router retries, so that every attempt is recorded
and a model that keeps failing hands over to the next one in the route.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

import anthropic
import openai

from dsassist.llm.settings import Provider

Messages = list[dict[str, str]]  # user and assistant turns
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class Completion:
    text: str
    tokens_in: int | None  # None: the server did not say
    tokens_out: int | None
    refused: bool = False


class TransientError(Exception):
    """Worth retrying: a timeout, a dropped connection, 429 or 5xx."""

    def __init__(self, outcome: str, retry_after_s: float | None = None) -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.retry_after_s = retry_after_s


class CallError(Exception):
    """Not worth retrying with this model: a bad request, a rejected key, an unknown model."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class Client(Protocol):
    def complete(
        self, model: str, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> Completion:
        """The model's reply to `messages` (user and assistant turns) after `system`."""


class OpenAIClient:
    """Any OpenAI-compatible endpoint: OpenAI, vLLM, Ollama, llama.cpp server, OpenRouter, ..."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.sdk = openai.OpenAI(
            base_url=provider.base_url, api_key=provider.key(), timeout=provider.timeout_s, max_retries=0
        )

    def complete(self, model: str, system: str, messages: Messages, max_tokens: int) -> Completion:
        options: dict[str, object] = {self.provider.max_tokens_param: max_tokens}
        temperature = 0.0 if self.provider.temperature is None else self.provider.temperature
        if temperature >= 0:  # a negative temperature: send none (models that take only their own)
            options["temperature"] = temperature
        with _faults(openai):
            reply = self.sdk.chat.completions.create(
                model=model,
                messages=[{"role": "system", "content": system}, *messages],  # type: ignore[list-item]
                **options,  # type: ignore[arg-type]
            )
            if not reply.choices:
                raise CallError("empty reply")
            choice = reply.choices[0]
            refusal = getattr(choice.message, "refusal", None)
            usage = reply.usage
            return Completion(
                text=choice.message.content or refusal or "",
                tokens_in=usage.prompt_tokens if usage else None,
                tokens_out=usage.completion_tokens if usage else None,
                refused=bool(refusal) or choice.finish_reason == "content_filter",
            )


class AnthropicClient:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.sdk = anthropic.Anthropic(
            base_url=provider.base_url, api_key=provider.key(), timeout=provider.timeout_s, max_retries=0
        )

    def complete(self, model: str, system: str, messages: Messages, max_tokens: int) -> Completion:
        options: dict[str, object] = {}
        if self.provider.temperature is not None:
            options["temperature"] = self.provider.temperature
        with _faults(anthropic):
            reply = self.sdk.messages.create(
                model=model,
                system=system,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                **options,  # type: ignore[arg-type]
            )
            usage = reply.usage
            return Completion(
                text="".join(block.text for block in reply.content or [] if block.type == "text"),
                tokens_in=usage.input_tokens if usage else None,
                tokens_out=usage.output_tokens if usage else None,
                refused=reply.stop_reason == "refusal",
            )


def make_client(provider: Provider) -> Client:
    return OpenAIClient(provider) if provider.kind == "openai" else AnthropicClient(provider)


class _faults:
    """Translate what one SDK raises, and any reply it cannot read, into our two faults."""

    def __init__(self, sdk: object) -> None:
        self.sdk = sdk

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, _tb: object) -> bool:
        sdk = self.sdk
        if exc is None or isinstance(exc, TransientError | CallError):
            return False
        if isinstance(exc, sdk.APITimeoutError):  # type: ignore[attr-defined]
            raise TransientError("timeout") from None
        if isinstance(exc, sdk.APIConnectionError):  # type: ignore[attr-defined]
            raise TransientError("connection error") from None
        if isinstance(exc, sdk.APIStatusError):  # type: ignore[attr-defined]
            status = exc.status_code
            if status in RETRYABLE_STATUS:
                raise TransientError(f"http {status}", retry_after(exc.response.headers)) from None
            raise CallError(f"http {status}") from None
        if isinstance(exc, Exception):  # a body that is not the API's JSON, a field that is null
            raise CallError(f"malformed reply ({type(exc).__name__})") from None
        return False


def retry_after(headers: object) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    get = getattr(headers, "get", lambda _: None)
    millis, value = get("retry-after-ms"), get("retry-after")
    seconds: float | None = None
    with contextlib.suppress(ValueError, TypeError):
        seconds = float(millis) / 1000 if millis is not None else float(value) if value is not None else None
    if seconds is None and value:
        with contextlib.suppress(ValueError, TypeError, IndexError):
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None

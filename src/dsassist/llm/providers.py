"""One call to a model through its provider's official SDK, with faults sorted for the router.

The SDKs' own retries are switched off: the router retries, so that every attempt is recorded
and a model that keeps failing hands over to the next one in the route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import anthropic
import openai

from dsassist.llm.settings import Provider

Messages = list[dict[str, str]]  # user and assistant turns
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class Completion:
    text: str
    tokens_in: int
    tokens_out: int
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
        self.sdk = openai.OpenAI(
            base_url=provider.base_url, api_key=provider.key(), timeout=provider.timeout_s, max_retries=0
        )

    def complete(
        self, model: str, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> Completion:
        with _faults(openai):
            reply = self.sdk.chat.completions.create(
                model=model,
                messages=[{"role": "system", "content": system}, *messages],  # type: ignore[list-item]
                max_tokens=max_tokens,
                temperature=0,
            )
        if not reply.choices:
            raise CallError("empty reply")
        message = reply.choices[0].message
        refusal = getattr(message, "refusal", None)
        usage = reply.usage
        return Completion(
            text=message.content or refusal or "",
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
            refused=bool(refusal) or reply.choices[0].finish_reason == "content_filter",
        )


class AnthropicClient:
    def __init__(self, provider: Provider) -> None:
        self.sdk = anthropic.Anthropic(
            base_url=provider.base_url, api_key=provider.key(), timeout=provider.timeout_s, max_retries=0
        )

    def complete(
        self, model: str, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> Completion:
        with _faults(anthropic):
            reply = self.sdk.messages.create(
                model=model,
                system=system,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
            )
        text = "".join(block.text for block in reply.content if block.type == "text")
        return Completion(
            text=text,
            tokens_in=reply.usage.input_tokens,
            tokens_out=reply.usage.output_tokens,
            refused=reply.stop_reason == "refusal",
        )


def make_client(provider: Provider) -> Client:
    return OpenAIClient(provider) if provider.kind == "openai" else AnthropicClient(provider)


class _faults:
    """Translate one SDK's exceptions (both SDKs share the same hierarchy) into ours."""

    def __init__(self, sdk: object) -> None:
        self.sdk = sdk

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> bool:
        sdk = self.sdk
        if exc is None:
            return False
        if isinstance(exc, sdk.APITimeoutError):  # type: ignore[attr-defined]
            raise TransientError("timeout") from None
        if isinstance(exc, sdk.APIConnectionError):  # type: ignore[attr-defined]
            raise TransientError("connection error") from None
        if isinstance(exc, sdk.APIStatusError):  # type: ignore[attr-defined]
            status = exc.status_code
            if status in RETRYABLE_STATUS:
                raise TransientError(f"http {status}", _retry_after(exc.response.headers)) from None
            raise CallError(f"http {status}") from None
        return False


def _retry_after(headers: object) -> float | None:
    value = getattr(headers, "get", lambda _: None)("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None

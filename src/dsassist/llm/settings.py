"""`dsassist.toml`: which models exist, what they cost, which role may use which, the budget,
and where the project's provenance store lives.

Keys never live in the file: a provider names the environment variable that holds its key.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dsassist.config import parse_duration
from dsassist.errors import DSAssistError

CONFIG_FILE = "dsassist.toml"
ROLES = ("planner", "coder", "fixer", "evaluator", "reflector")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a silent default


class Provider(_Strict):
    kind: Literal["openai", "anthropic"]
    base_url: str | None = None
    # the variable that holds the key (never the key itself); None for a keyless local server
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout_s: float = Field(60.0, gt=0)
    # OpenAI's reasoning models want max_completion_tokens; compatible servers take max_tokens
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    temperature: float | None = None  # openai: 0 unless set (negative: send none); anthropic: its default

    def key(self) -> str:
        if self.api_key_env is None:
            return "unused"  # the SDKs insist on a key; a local server ignores it
        value = os.environ.get(self.api_key_env)
        if not value:
            raise DSAssistError(f"environment variable {self.api_key_env} is not set (it holds the API key)")
        return value


class Model(_Strict):
    provider: str
    name: str
    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    max_output_tokens: int = Field(2048, ge=16)

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_usd_per_mtok + tokens_out * self.output_usd_per_mtok) / 1e6


class Routes(_Strict):
    """For each role, the models to try, cheapest first; a failure escalates to the next."""

    planner: list[str] = Field(default_factory=list)
    coder: list[str] = Field(default_factory=list)
    fixer: list[str] = Field(default_factory=list)
    evaluator: list[str] = Field(default_factory=list)
    reflector: list[str] = Field(default_factory=list)


class LLMSettings(_Strict):
    providers: dict[str, Provider]
    models: dict[str, Model]
    routes: Routes
    retries: int = Field(2, ge=0)  # per model, for timeouts, 429 and 5xx
    backoff_s: float = Field(1.0, ge=0)  # doubled after each retry
    max_reasks: int = Field(2, ge=0)  # re-asks with the parse error before the next model

    @model_validator(mode="after")
    def _names_exist(self) -> LLMSettings:
        for name, model in self.models.items():
            if model.provider not in self.providers:
                raise ValueError(f"model {name!r} names unknown provider {model.provider!r}")
        for role in ROLES:
            for name in getattr(self.routes, role):
                if name not in self.models:
                    raise ValueError(f"routes.{role} names unknown model {name!r}")
        return self

    def route(self, role: str) -> list[str]:
        return list(getattr(self.routes, role))


class Budget(_Strict):
    usd: float | None = Field(None, gt=0)
    wall: str | None = None  # a duration: 90s, 10m, 1h

    @field_validator("wall")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_duration(value)
            except DSAssistError as exc:
                raise ValueError(str(exc)) from None
        return value


class StoreSettings(_Strict):
    url: str | None = None  # the project's (or team's) store: a SQLite path or postgresql://...


class Settings(_Strict):
    llm: LLMSettings | None = None  # None: the offline policy only
    budget: Budget = Field(default_factory=Budget)
    store: StoreSettings = Field(default_factory=StoreSettings)


def load_settings(path: Path | None = None) -> Settings:
    """The settings in `path`, or in ./dsassist.toml if it exists, or none (offline)."""
    if path is None:
        path = Path(CONFIG_FILE)
        if not path.is_file():
            return Settings()
    elif not path.is_file():
        raise DSAssistError(f"config file {path} not found")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DSAssistError(f"{path}: invalid TOML: {exc}") from None
    _refuse_inline_keys(raw, path)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        # a misspelt key also leaves a required one missing: name the misspelling
        err = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        where = ".".join(str(part) for part in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        raise DSAssistError(f"{path}: {where}: {message}" if where else f"{path}: {message}") from None


def _refuse_inline_keys(raw: dict, path: Path) -> None:
    llm = raw.get("llm")
    providers = llm.get("providers") if isinstance(llm, dict) else None
    for name, provider in providers.items() if isinstance(providers, dict) else ():
        if isinstance(provider, dict) and "api_key" in provider:
            raise DSAssistError(
                f"{path}: llm.providers.{name}.api_key: keys are not read from the config file; "
                "name the environment variable that holds it with api_key_env"
            )

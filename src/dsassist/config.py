"""Run settings: one typed object that the CLI, the API and the controller share."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from dsassist.errors import DSAssistError

TaskType = Literal["binary", "multiclass", "regression"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str | float) -> float:
    """Seconds in a duration such as `90`, `90s`, `5m`, `1h` or `1h30m`."""
    if isinstance(text, int | float):
        return float(text)
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parts = _DURATION.findall(value)
    if not parts or _DURATION.sub("", value).strip():
        raise DSAssistError(f"invalid duration {text!r}: use e.g. 90s, 5m or 1h")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


class RunConfig(BaseModel):
    data: Path
    target: str | None  # None: answer the question from the data, with a model, without modelling
    question: str = ""
    out: Path
    budget_s: float = Field(300.0, gt=0)
    max_steps: int = Field(40, ge=1)
    seed: int = 0
    metric: str | None = None  # default follows the task: roc_auc, accuracy or rmse
    folds: int = Field(5, ge=2, le=20)
    group_column: str | None = None
    time_column: str | None = None
    cell_timeout_s: float = Field(600.0, gt=0)
    max_fix_attempts: int = Field(2, ge=0)
    templates_file: Path | None = None  # extra experiment templates from a Python file
    overwrite: bool = False
    explore_share: float = Field(0.3, ge=0.0, le=1.0)  # time for Bayesian parameter sampling
    config_file: Path | None = None  # dsassist.toml: models, routes and the dollar budget
    bus: str | None = None  # redis://...: agents served by `dsassist worker`; None: in this process
    executor: Literal["local", "ray"] = "local"  # where the kernels run: here, or in Ray actors
    ray_address: str | None = None  # auto, ray://host:10001; None: start Ray on this machine
    parallel: int = Field(1, ge=1, le=256)  # branches of the experiment tree run at once
    cores: int | None = Field(None, ge=1)  # per kernel; None: this machine's cores / parallel
    # the sandbox: isolation and per-kernel limits (None switches a limit off)
    isolation: Literal["auto", "strict", "none"] = "auto"
    memory_mb: int | None = Field(4096, ge=1024)  # address space: a kernel maps ~700 MB to start
    cpu_s: int | None = Field(None, ge=1)
    processes: int | None = Field(256, ge=8)
    output_kb: int = Field(256, ge=1)
    file_mb: int | None = Field(1024, ge=1)

    def sandbox_options(self) -> dict[str, object]:
        keys = ("isolation", "memory_mb", "cpu_s", "processes", "output_kb", "file_mb")
        return {k: getattr(self, k) for k in keys}

    @field_validator("budget_s", "cell_timeout_s", mode="before")
    @classmethod
    def _duration(cls, v: str | float) -> float:
        return parse_duration(v)

"""DSAssist: an agent for data science that runs many tiny, recorded experiments.

The entry points load lazily: the kernel imports `dsassist.templates.tabular.toolkit`
and should not pay for the controller's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dsassist.api import RunResult, predict, resume, run
    from dsassist.errors import DSAssistError

__all__ = ["DSAssistError", "RunResult", "predict", "resume", "run"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "DSAssistError":
        from dsassist.errors import DSAssistError

        return DSAssistError
    if name in ("RunResult", "predict", "resume", "run"):
        from dsassist import api

        return getattr(api, name)
    raise AttributeError(f"module 'dsassist' has no attribute {name!r}")

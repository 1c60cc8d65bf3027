"""The coder: one focused cell per task, and a targeted fix of that cell when it fails."""

from __future__ import annotations

import ast
import difflib
import importlib
import re
from collections.abc import Callable
from functools import cache

from dsassist.llm.parse import code_cell
from dsassist.llm.prompts import FIX_CELL, WRITE_CELL, clip, state_summary
from dsassist.llm.router import NoModel, Router
from dsassist.messages import Cell, CodeRequest, FixRequest, KernelState
from dsassist.templates.base import Template

# names that generated code commonly uses without importing them
COMMON_IMPORTS = {
    "np": "import numpy as np",
    "pd": "import pandas as pd",
    "plt": "import matplotlib.pyplot as plt",
    "math": "import math",
    "re": "import re",
    "cross_val_score": "from sklearn.model_selection import cross_val_score",
    "cross_validate": "from sklearn.model_selection import cross_validate",
    "train_test_split": "from sklearn.model_selection import train_test_split",
    "make_pipeline": "from sklearn.pipeline import make_pipeline",
}


class Coder:
    """Offline policy: fill the template's code skeleton; repair failures by rule."""

    def __init__(self, templates: list[Template]) -> None:
        self.templates = {t.id: t for t in templates}

    def handle(self, request: CodeRequest | FixRequest) -> Cell:
        if isinstance(request, FixRequest):
            return self.fix(request)
        return Cell(code=self.templates[request.task.template_id].render(request.task))

    def fix(self, request: FixRequest) -> Cell:
        """The smallest change to the failing cell that addresses its error, or give up."""
        error = request.execution.error
        if error is None:
            return Cell(code=request.code, gave_up=True)
        for name, rule in FIX_RULES:
            fixed = rule(request.code, error.name, error.value, request.state)
            if fixed is not None and fixed != request.code:
                return Cell(code=fixed, rule=name)
        return Cell(code=request.code, gave_up=True)


class ModelCoder(Coder):
    """With a model: cells for tasks no template codes, and the fixes no rule can make.

    Template cells stay as they are (free, tested, deterministic), and the repair rules go
    first. A fix after two failures, or of the final refit, goes to the strongest model. A
    model that proposes a cell already tried in this step is looping: the step gives up.
    """

    def __init__(self, templates: list[Template], router: Router) -> None:
        super().__init__(templates)
        self.router = router

    def handle(self, request: CodeRequest | FixRequest) -> Cell:
        if isinstance(request, FixRequest):
            return self.fix(request)
        template = self.templates.get(request.task.template_id)
        if template is not None and template.code.strip():
            return super().handle(request)
        skeleton = template.render_prompt(request.task, "") if template is not None else ""
        prompt = WRITE_CELL.render(
            hypothesis=request.task.hypothesis,
            skeleton=skeleton,
            state=state_summary(request.state),
            history=request.history or "(none yet)",
        )
        try:
            code = self.router.ask("coder", prompt, _cell_parser(request.state), step_id=request.step_id)
        except NoModel as exc:
            return Cell(code="", gave_up=True, rule=f"no model: {exc}")
        return Cell(code=code, rule="model")

    def fix(self, request: FixRequest) -> Cell:
        cell = super().fix(request)
        if not cell.gave_up:
            return cell
        error = request.execution.error
        prompt = FIX_CELL.render(
            hypothesis=request.task.hypothesis,
            code=request.code.rstrip(),
            feedback=request.feedback,
            traceback=clip("\n".join(error.traceback), 2000) if error else "(none: it ran)",
            state=state_summary(request.state),
        )
        strongest = request.attempt >= 2 or request.task.kind == "final"
        try:
            code = self.router.ask(
                "fixer",
                prompt,
                _cell_parser(request.state),
                level=-1 if strongest else request.attempt - 1,
                step_id=request.step_id,
            )
        except NoModel:
            return Cell(code=request.code, gave_up=True)
        if _normal(code) in {_normal(c) for c in [request.code, *request.tried]}:
            return Cell(code=request.code, gave_up=True, rule="model-loop")
        return Cell(code=code, rule="model-fix")


def _cell_parser(state: KernelState) -> Callable[[str], str]:
    known = {v.name for v in state.variables} | set(state.modules)
    return lambda text: code_cell(text, known)


def _normal(code: str) -> str:
    """The code's syntax tree: comments, blank lines and spacing do not make a new fix."""
    try:
        return ast.dump(ast.parse(code))
    except SyntaxError:
        return code.strip()


Rule = Callable[[str, str, str, KernelState], str | None]


def _missing_import(code: str, name: str, value: str, state: KernelState) -> str | None:
    match = re.search(r"name '(\w+)' is not defined", value)
    if name != "NameError" or not match:
        return None
    line = import_line(match.group(1))
    return f"{line}\n{code}" if line else None


def _misspelled_name(code: str, name: str, value: str, state: KernelState) -> str | None:
    match = re.search(r"name '(\w+)' is not defined", value)
    if name != "NameError" or not match:
        return None
    close = difflib.get_close_matches(match.group(1), [v.name for v in state.variables], n=1)
    return re.sub(rf"\b{match.group(1)}\b", close[0], code) if close else None


def _unknown_column(code: str, name: str, value: str, state: KernelState) -> str | None:
    """A KeyError for columns: use the closest real column names of the frames in the kernel.

    pandas says `'faer'` for one column and `"['Agee', 'Fare'] not in index"` for a list.
    """
    if name != "KeyError":
        return None
    known = sorted({c for v in state.variables for c in (v.columns or [])})
    wrong = [w for w in re.findall(r"'([^']+)'", value) or re.findall(r'"([^"]+)"', value) if w not in known]
    fixed = code
    for w in wrong:
        close = difflib.get_close_matches(w, known, n=1, cutoff=0.6)
        if close:
            fixed = re.sub(
                rf"""(['"]){re.escape(w)}\1""", lambda m, c=close[0]: f"{m.group(1)}{c}{m.group(1)}", fixed
            )
    return fixed if fixed != code else None


def _unexpected_keyword(code: str, name: str, value: str, state: KernelState) -> str | None:
    """An estimator given a parameter it does not have: drop that parameter."""
    match = re.search(r"unexpected keyword argument '(\w+)'", value)
    if name != "TypeError" or not match:
        return None
    key = re.escape(match.group(1))
    return re.sub(rf"""\s*['"]{key}['"]\s*:\s*[^,}}]+,?|\s*\b{key}\s*=\s*[^,)]+,?""", "", code)


FIX_RULES: list[tuple[str, Rule]] = [
    ("add-missing-import", _missing_import),
    ("rename-to-defined-variable", _misspelled_name),
    ("use-existing-column", _unknown_column),
    ("drop-unknown-parameter", _unexpected_keyword),
]


def import_line(name: str) -> str | None:
    """The import statement that defines `name`, for common libraries and every sklearn estimator."""
    return COMMON_IMPORTS.get(name) or _sklearn_imports().get(name)


@cache
def _sklearn_imports() -> dict[str, str]:
    from sklearn.utils import all_estimators

    lines = {}
    for cls_name, cls in all_estimators():
        public = ".".join(
            cls.__module__.split(".")[:2]
        )  # sklearn.preprocessing._data -> sklearn.preprocessing
        if hasattr(importlib.import_module(public), cls_name):
            lines[cls_name] = f"from {public} import {cls_name}"
    return lines

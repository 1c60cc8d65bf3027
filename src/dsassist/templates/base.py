"""Experiment templates: a hypothesis, a code skeleton, a prompt skeleton, and when it applies."""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dsassist.messages import RunView, Task

Params = dict[str, Any]


@dataclass(frozen=True)
class Template:
    """One kind of tiny experiment.

    `applies(run)` returns the parameter sets the template can be tried with now (none: it
    does not apply). `code` and `prompt` are `string.Template` skeletons filled with the
    parameters (as Python literals in code), the hypothesis and, for prompts, the kernel state.
    """

    id: str
    kind: str  # setup, profile, guard, validation, baseline, model, feature, tuning, final
    hypothesis: str  # str.format skeleton over the parameters
    code: str
    applies: Callable[[RunView], list[Params]]
    prompt: str = ""
    judged: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)
    # the step to build on; by default the best step (judged) or the previous one (set-up)
    parent: Callable[[RunView], int | None] | None = None

    def task(self, params: Params, parent: int | None) -> Task:
        return Task(
            template_id=self.id,
            kind=self.kind,
            hypothesis=self.hypothesis.format(**params),
            params=params,
            judged=self.judged,
            parent=parent,
        )

    def render(self, task: Task) -> str:
        literals = {k: repr(v) for k, v in task.params.items()}
        body = string.Template(self.code.strip("\n")).substitute(literals)
        return f"# {task.hypothesis}\n{body}\n"

    def render_prompt(self, task: Task, state: str) -> str:
        values = {**task.params, "hypothesis": task.hypothesis, "state": state}
        return string.Template(self.prompt).safe_substitute(values)

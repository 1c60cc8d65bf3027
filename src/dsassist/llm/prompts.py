"""Versioned prompt templates, and the compact context every prompt carries.

A prompt is a template (id and version, recorded with every call) filled with the task, a
summary of the live kernel and what earlier steps found. Summaries stay small on wide data:
a frame lists its first columns by name and counts the rest.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from dsassist.messages import KernelState, RunView

MAX_COLUMNS = 40  # column names listed per frame; the rest are counted


@dataclass(frozen=True)
class Prompt:
    template: str
    version: int
    system: str
    user: str


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    version: int
    system: str
    user: str

    def render(self, **values: object) -> Prompt:
        user = string.Template(self.user).safe_substitute({k: str(v) for k, v in values.items()})
        return Prompt(self.id, self.version, self.system, user)


_ANALYST = (
    "You are one role in DSAssist, an agent that answers questions about data by running many "
    "tiny experiments in a live Jupyter kernel. "
)
_ONE_CELL = (
    "Reply with exactly one ```python code block holding one cell. Do not reload the data or "
    "redo set-up: the kernel already holds the variables listed. Print the numbers that answer "
    "the subtask."
)

PLAN = PromptTemplate(
    "plan-question",
    1,
    _ANALYST + "Role: planner. Break the question into at most 5 minimal subtasks, each answerable "
    "by one short cell, in the order to run them. Reply with JSON only: "
    '{"subtasks": [{"hypothesis": "..."}]}',
    "Question: $question\nTarget column: $target\nData profile:\n$profile\nSteps so far:\n$history",
)

WRITE_CELL = PromptTemplate(
    "write-cell",
    1,
    _ANALYST + "Role: coder. " + _ONE_CELL,
    "Subtask: $hypothesis\n$skeleton\nThe live kernel holds:\n$state\nSteps so far:\n$history",
)

FIX_CELL = PromptTemplate(
    "fix-cell",
    1,
    _ANALYST + "Role: fixer. A cell failed. Change as little as possible so that it runs and does "
    "what the subtask asks. " + _ONE_CELL,
    "Subtask: $hypothesis\nThe failing cell:\n```python\n$code\n```\nWhat went wrong: $feedback\n"
    "Traceback (last lines):\n$traceback\nThe live kernel holds:\n$state",
)

JUDGE = PromptTemplate(
    "judge-output",
    1,
    _ANALYST + "Role: evaluator. Decide whether a cell's output answers its subtask. Reply with "
    'JSON only: {"answered": true|false, "finding": "one sentence with the numbers", '
    '"feedback": "what to change if not answered"}',
    "Subtask: $hypothesis\nCell:\n```python\n$code\n```\nOutput:\n$output",
)

ANSWER = PromptTemplate(
    "answer-question",
    1,
    _ANALYST + "Role: evaluator. Write the direct answer to the question from the evidence only, "
    "in at most 6 sentences, quoting the numbers and naming the steps they come from. Plain text.",
    "Question: $question\nEvidence from the steps:\n$evidence\nThe offline summary:\n$summary",
)

REFLECT = PromptTemplate(
    "reflect-step",
    1,
    _ANALYST + "Role: reflector. State in one sentence what this step taught, with its numbers, "
    "for the scientist who plans the next step. Plain text.",
    "Step $step: $hypothesis\nVerdict: $verdict\nWhat happened: $outcome",
)


def state_summary(state: KernelState, max_columns: int = MAX_COLUMNS) -> str:
    """One line per variable; a frame names its first columns and counts the others."""
    lines = [f"imports: {', '.join(state.modules)}"] if state.modules else []
    for v in state.variables:
        parts = [f"{v.name}: {v.type}"]
        if v.shape:
            parts.append(v.shape)
        if v.detail:
            parts.append(v.detail)
        if v.columns:
            shown = ", ".join(v.columns[:max_columns])
            rest = _more_columns(v, max_columns)
            parts.append(f"columns [{shown}{rest}]")
        lines.append(" ".join(parts))
    return "\n".join(lines)


def _more_columns(v: object, shown: int) -> str:
    columns = getattr(v, "columns", None) or []
    shape = getattr(v, "shape", "") or ""
    total = len(columns)
    dims = shape.strip("()").split(",")
    if len(dims) == 2 and dims[1].strip().isdigit():
        total = int(dims[1])
    return f", ... and {total - shown} more" if total > shown else ""


def profile_summary(run: RunView, max_columns: int = MAX_COLUMNS) -> str:
    """Shape, target and the first columns of the profile, with kinds and missing shares."""
    profile = run.profile
    columns = profile.get("columns", {})
    lines = [f"{profile.get('rows', '?')} rows, {len(columns)} columns; task {run.task}"]
    for name, info in list(columns.items())[:max_columns]:
        missing = info.get("missing", 0)
        lines.append(f"- {name}: {info.get('kind')}" + (f", {missing:.0%} missing" if missing else ""))
    if len(columns) > max_columns:
        kinds: dict[str, int] = {}
        for info in list(columns.values())[max_columns:]:
            kinds[info.get("kind", "?")] = kinds.get(info.get("kind", "?"), 0) + 1
        counted = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        lines.append(f"- ... and {len(columns) - max_columns} more columns ({counted})")
    if profile.get("suspicious"):
        lines.append(f"excluded as suspicious: {profile['suspicious']}")
    return "\n".join(lines)


def clip(text: str, limit: int) -> str:
    """Head and tail of a long text: errors and results tend to sit at either end."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... ({len(text) - limit} characters cut) ...\n{text[-half:]}"

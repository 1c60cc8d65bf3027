"""The winning path as a Jupyter notebook that re-executes top to bottom to the same score."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dsassist.controller import ACCEPT_CELL, Loop
from dsassist.messages import StepSummary, Verdict


def winning_path(loop: Loop) -> list[StepSummary]:
    """The set-up steps, the kept hypotheses leading to the best step, and the final refit."""
    return [
        s for s in loop.view.steps if s.verdict in (Verdict.DONE, Verdict.ACCEPTED) and s.id in loop.cells
    ]


def write_notebook(loop: Loop, path: Path, title: str) -> None:
    cells = [
        new_markdown_cell(f"# {title}\n\nThe winning path of a DSAssist run: each cell is one kept step.")
    ]
    for step in winning_path(loop):
        header = f"**Step {step.id}**: {step.hypothesis}"
        if step.metrics is not None:
            header += f" — {step.metrics.metric} {step.metrics.mean:.4f} ± {step.metrics.std:.4f}"
        code = loop.cells[step.id].rstrip()
        if step.verdict == Verdict.ACCEPTED:
            code += f"\n{ACCEPT_CELL}"
        cells += [new_markdown_cell(header), new_code_cell(code)]
    notebook = new_notebook(
        cells=cells,
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(notebook, path)

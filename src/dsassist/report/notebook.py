"""The winning path as a Jupyter notebook that re-executes top to bottom to the same score."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dsassist.controller import Loop, winning_path


def write_notebook(loop: Loop, path: Path, title: str) -> None:
    cells = [
        new_markdown_cell(f"# {title}\n\nThe winning path of a DSAssist run: each cell is one kept step.")
    ]
    for step, code in winning_path(loop):
        header = f"**Step {step.id}**: {step.hypothesis}"
        if step.metrics is not None:
            header += f" — {step.metrics.metric} {step.metrics.mean:.4f} ± {step.metrics.std:.4f}"
        cells += [new_markdown_cell(header), new_code_cell(code)]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": kernelspec}), path)

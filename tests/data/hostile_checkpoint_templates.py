"""A template that corrupts the checkpoint store in the kernel's folder, then kills the kernel.

The checkpoint objects live in `<run>/work/.checkpoints/objects`, which the kernel may write;
restoring the last checkpoint after the kernel dies then finds them corrupt. Runs right after
the baseline, so the run that carries it is short. For tests/sandbox/test_hostile.py.
"""

from __future__ import annotations

from dsassist.templates import Template
from dsassist.templates.tabular.library import EVALUATE

TAMPER = f"""
import glob, os
candidate_spec = {{**spec}}
for path in glob.glob(".checkpoints/objects/*"):
    with open(path, "wb") as f:
        f.write(b"tampered")
os._exit(1)
{EVALUATE}
"""


def after_baseline(run):
    return [{}] if any(s.kind == "baseline" and s.metrics for s in run.steps) else []


TEMPLATES = [
    Template(
        "hostile_tamper_checkpoints", "baseline", "Corrupt the checkpoints, then die", TAMPER, after_baseline
    ),
]

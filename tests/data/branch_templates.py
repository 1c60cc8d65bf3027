"""A template that branches from an old step: the linear model again, from the baseline's state."""

from dsassist.templates import Template
from dsassist.templates.tabular.library import JUDGED


def from_baseline(run):
    return next(s.id for s in run.steps if s.kind == "baseline")


def after_tuning(run):
    return (
        [{"change": {"model": "linear", "params": {}}}] if any(s.kind == "tuning" for s in run.steps) else []
    )


TEMPLATES = [
    Template(
        "branch_linear",
        "tuning",
        "Linear again, branched from the baseline",
        JUDGED,
        after_tuning,
        parent=from_baseline,
    )
]

"""Cross-run knowledge: how each hypothesis fared on earlier data like this.

A dataset is summarized by its task, size, column kinds and missingness; earlier runs on
similar data (same task, within a factor of ten in rows, close shares of categorical columns
and of missing cells) tell, per template, how often it was tried, kept, and its mean gain.
The offline planner tries the templates that paid off first.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Engine, case, func, select

from dsassist.messages import Prior
from dsassist.store import schema

JUDGED_KINDS = ("model", "feature", "tuning", "ensemble", "explore")
MAX_SIMILAR_RUNS = 500  # the most recent similar runs are enough, and keep the query fast


def summarize(profile: dict[str, Any], task: str) -> dict[str, Any]:
    """Task, rows, and the share of each column kind and of missing cells."""
    columns = profile.get("columns", {})
    n = max(len(columns), 1)
    kinds = [info.get("kind") for info in columns.values()]
    return {
        "task": task,
        "rows": int(profile.get("rows", 0)),
        "columns": len(columns),
        **{
            f"{kind}_share": round(kinds.count(kind) / n, 4)
            for kind in ("numeric", "categorical", "text", "datetime")
        },
        "missing_share": round(sum(info.get("missing", 0.0) for info in columns.values()) / n, 4),
    }


def similar(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.get("task") != b.get("task") or not a.get("rows") or not b.get("rows"):
        return False
    return (
        abs(math.log10(a["rows"]) - math.log10(b["rows"])) <= 1.0
        and abs(a.get("categorical_share", 0) - b.get("categorical_share", 0)) <= 0.25
        and abs(a.get("missing_share", 0) - b.get("missing_share", 0)) <= 0.2
    )


def priors(engine: Engine, summary: dict[str, Any], exclude_run: str) -> dict[str, Prior]:
    """Per template: tries, keeps and mean gain over the most recent similar runs."""
    d, r, s = schema.datasets, schema.runs, schema.steps
    candidates = select(d.c.run_id, d.c.profile).join(r, r.c.id == d.c.run_id)
    candidates = candidates.where(d.c.profile.is_not(None), d.c.run_id != exclude_run).order_by(
        r.c.created_at.desc()
    )
    with engine.connect() as c:
        runs = [row.run_id for row in c.execute(candidates) if similar(summary, row.profile)][
            :MAX_SIMILAR_RUNS
        ]
        if not runs:
            return {}
        query = (
            select(
                s.c.template_id,
                func.count().label("tried"),
                func.sum(case((s.c.verdict == "accepted", 1), else_=0)).label("kept"),
                func.avg(s.c.gain).label("mean_gain"),
                func.count(func.distinct(s.c.run_id)).label("runs"),
            )
            .where(s.c.run_id.in_(runs), s.c.kind.in_(JUDGED_KINDS), s.c.gain.is_not(None))
            .where(s.c.metric == summary.get("metric", s.c.metric))  # gains in one unit
            .group_by(s.c.template_id)
        )
        return {
            row.template_id: Prior(tried=row.tried, kept=row.kept, mean_gain=row.mean_gain, runs=row.runs)
            for row in c.execute(query)
        }

"""Cross-run knowledge: earlier runs on similar data reorder the planner's hypotheses."""

from __future__ import annotations

import json
import sqlite3

import pytest
from stores import record_run, step
from typer.testing import CliRunner

from dsassist.agents.planner import ordered
from dsassist.cli import app
from dsassist.messages import Prior, RunView
from dsassist.store import ProvenanceStore
from dsassist.store.knowledge import priors, similar, summarize
from dsassist.templates import load_templates

PENGUIN_LIKE = {
    "task": "multiclass",
    "rows": 300,
    "columns": 6,
    "numeric_share": 0.67,
    "categorical_share": 0.33,
    "text_share": 0.0,
    "datetime_share": 0.0,
    "missing_share": 0.01,
}


def earlier_run(store: ProvenanceStore, i: int, summary: dict, extra_trees_kept: bool = True) -> None:
    """A finished run in which extra trees helped and the linear model did not."""
    run_id = f"{i:032d}"
    steps = [
        step(0, None, "setup", "setup", "done"),
        step(1, 0, "baseline", "baseline", "accepted", 0.4, None, "accuracy"),
        step(2, 1, "linear", "model", "rejected", 0.39, -0.01, "accuracy"),
        step(
            3, 1, "extra_trees", "model", "accepted" if extra_trees_kept else "rejected", 0.9, 0.5, "accuracy"
        ),
    ]
    record_run(store, run_id, f"/data/p{i}.csv", f"{i:064d}", steps, "accuracy")
    store.record_knowledge(run_id, summary, {})


def test_summary_and_similarity():
    profile = {
        "rows": 344,
        "columns": {
            "island": {"kind": "categorical", "missing": 0.0},
            "bill": {"kind": "numeric", "missing": 0.02},
            "sex": {"kind": "categorical", "missing": 0.03},
        },
    }
    summary = summarize(profile, "multiclass")
    assert summary["rows"] == 344 and summary["categorical_share"] == pytest.approx(0.6667, abs=1e-4)
    assert summary["missing_share"] == pytest.approx(0.0167, abs=1e-4)
    assert similar(summary, {**summary, "rows": 3000})
    assert not similar(summary, {**summary, "rows": 30_000})  # more than ten times the rows
    assert not similar(summary, {**summary, "task": "binary"})
    assert not similar(summary, {**summary, "categorical_share": 0.1})


def test_priors_count_similar_runs_only(tmp_path):
    store = ProvenanceStore(tmp_path / "p.db")
    for i in range(3):
        earlier_run(store, i, PENGUIN_LIKE)
    earlier_run(store, 3, {**PENGUIN_LIKE, "task": "binary"}, extra_trees_kept=False)  # not similar
    found = priors(store.engine, PENGUIN_LIKE, exclude_run=f"{0:032d}")  # a run never counts itself
    counts = {k: (p.tried, p.kept, p.runs) for k, p in found.items()}
    assert counts == {"linear": (2, 0, 2), "extra_trees": (2, 2, 2)}
    assert found["extra_trees"].mean_gain == pytest.approx(0.5)
    assert found["linear"].mean_gain == pytest.approx(-0.01)
    assert priors(store.engine, {**PENGUIN_LIKE, "task": "regression"}, "x") == {}
    store.close()


def test_planner_order_follows_the_priors_within_each_phase():
    templates = load_templates()
    view = RunView(task="multiclass", metric="accuracy", time_left_s=60, steps_left=10)
    library = [t.id for t in ordered(templates, view) if t.kind == "model"]
    assert library[:2] == ["linear", "lightgbm"]
    view.priors = {"extra_trees": Prior(tried=4, kept=4), "linear": Prior(tried=4, kept=0)}
    reordered = [t.id for t in ordered(templates, view)]
    models = [t for t in reordered if t in library]
    assert models[0] == "extra_trees" and models[-1] == "linear"
    assert reordered.index("setup") < reordered.index("extra_trees")  # phases keep their order


@pytest.mark.slow
def test_a_run_tries_what_helped_on_similar_data_first_and_says_so(tmp_path, example):
    project = tmp_path / "project.db"
    store = ProvenanceStore(project)
    for i in range(3):
        earlier_run(store, i, PENGUIN_LIKE)
    store.close()
    out = tmp_path / "run"
    args = ["run", str(example("penguins")), "--target", "species", "--out", str(out), "--max-steps", "8"]
    result = CliRunner().invoke(app, [*args, "--store", str(project), "--seed", "0"])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(out / "provenance.db") as c:
        models = [t for (t,) in c.execute("SELECT template_id FROM steps WHERE kind = 'model' ORDER BY id")]
        (known,) = c.execute("SELECT priors FROM runs").fetchone()
    assert models[0] == "extra_trees"
    assert json.loads(known)["extra_trees"]["kept"] == 3  # recorded with the run, for a resume
    report = (out / "report.md").read_text()
    assert "## What earlier runs taught" in report and "| extra_trees | 3 | 3 |" in report
    store = ProvenanceStore(project)
    with store.engine.connect() as c:
        profiles = [
            json.loads(p) if isinstance(p, str) else p
            for (p,) in c.exec_driver_sql("SELECT profile FROM datasets WHERE path LIKE '%penguins.csv'")
        ]
    assert profiles[0]["task"] == "multiclass" and profiles[0]["rows"] > 300
    store.close()

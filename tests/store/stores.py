"""Stores for the store tests: a SQLite file, or a fresh database on the machine's PostgreSQL.

PostgreSQL is reached at $DSASSIST_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432);
each test gets its own database, dropped afterwards. Where no server answers, the PostgreSQL
variants skip and say why.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from dsassist.messages import Attempt, Execution, Metrics, StepSummary, Verdict
from dsassist.store import ProvenanceStore

POSTGRES = os.environ.get("DSASSIST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty database; dropped on exit."""
    admin = create_engine(f"{POSTGRES.replace('postgresql://', 'postgresql+psycopg://')}/postgres")
    name = f"dsassist_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server, no driver, no rights: say which
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES}: {str(exc).splitlines()[0]}")
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def store_location(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield str(tmp_path / "project" / "provenance.db")
    else:
        with postgres_database() as url:
            yield url


def step(i, parent, template, kind, verdict, score=None, gain=None, metric="roc_auc", higher=True):
    metrics = None
    if score is not None:
        metrics = Metrics(metric=metric, higher_is_better=higher, folds=[score] * 3, mean=score, std=0.0)
    return StepSummary(
        id=i,
        parent=parent,
        template_id=template,
        kind=kind,
        hypothesis=f"{template} hypothesis",
        verdict=Verdict(verdict),
        metrics=metrics,
        gain=gain,
        duration_s=0.1,
        lesson=f"lesson of {template}",
    )


# Two runs with known lineage: the expected answers of every query follow from these lines.
RUN_A = [  # titanic, roc_auc
    step(0, None, "setup", "setup", "done"),
    step(1, 0, "baseline", "baseline", "accepted", 0.50),
    step(2, 1, "linear", "model", "accepted", 0.80, 0.30),
    step(3, 2, "lightgbm", "model", "rejected", 0.79, -0.01),
    step(4, 2, "missing_indicators", "feature", "accepted", 0.83, 0.03),
    step(5, 4, "log_skewed", "feature", "accepted", 0.835, 0.005),
    step(6, 5, "target_encoding", "feature", "rejected", 0.82, -0.015),
    step(7, 5, "final", "final", "done"),
]
RUN_B = [  # mpg, rmse
    step(0, None, "setup", "setup", "done"),
    step(1, 0, "baseline", "baseline", "accepted", 7.0, None, "rmse", False),
    step(2, 1, "linear", "model", "accepted", 3.4, 3.6, "rmse", False),
    step(3, 2, "log_target", "feature", "accepted", 3.0, 0.4, "rmse", False),
    step(4, 3, "final", "final", "done"),
]


def record_run(store: ProvenanceStore, run_id: str, dataset: str, sha: str, steps, metric: str) -> None:
    config = {"target": "y", "task": "binary", "metric": metric, "seed": 0, "question": ""}
    store.start_run(
        run_id, config, {"path": dataset, "sha256": sha, "n_rows": 100, "n_cols": 5, "format": "csv"}
    )
    for s in steps:
        code = f"# step {s.id}\nrun_{s.template_id}()\n"
        store.record_step(
            run_id, s, [Attempt(code=code, execution=Execution(ok=True))], "2026-11-30T00:00:00"
        )
    best = max((s for s in steps if s.verdict == Verdict.ACCEPTED), key=lambda s: s.id)
    store.finish_run(run_id, "finished", best.id, best.metrics.mean, "answer")


def fill(store: ProvenanceStore) -> None:
    record_run(store, "a" * 32, "/data/titanic.csv", "1234abcd" + "0" * 56, RUN_A, "roc_auc")
    time.sleep(0.01)  # runs are ordered by creation time (milliseconds)
    record_run(store, "b" * 32, "/data/mpg.csv", "9876fedc" + "0" * 56, RUN_B, "rmse")

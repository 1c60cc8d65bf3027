"""Parallel branches on local kernels: steps overlap, each is recorded once after its parent,
and an interrupted run resumes without losing or repeating a step."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import dsassist

pytestmark = pytest.mark.slow
ALONE = {"setup", "profile", "guard", "validation", "baseline", "final"}  # never beside another step


def steps(out: Path) -> list[dict]:
    with sqlite3.connect(out / "provenance.db") as c:
        c.row_factory = sqlite3.Row
        rows = c.execute(
            "select id, parent_id, template_id, kind, verdict, score, started_at, duration_s"
            " from steps order by id"
        ).fetchall()
    return [dict(r) for r in rows]


def spans(rows: list[dict]) -> dict[int, tuple[datetime, datetime]]:
    out = {}
    for r in rows:
        start = datetime.fromisoformat(r["started_at"])
        out[r["id"]] = (start, start + timedelta(seconds=r["duration_s"]))
    return out


def overlapping(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_two_branches_overlap_and_each_step_starts_after_its_parent(tmp_path, example):
    out = tmp_path / "run"
    result = dsassist.run(
        example("penguins"), "species", out, budget="90s", max_steps=12, parallel=2, store="none"
    )
    rows = steps(out)
    assert result.status == "finished" and (out / "model.pkl").is_file()
    assert [r["id"] for r in rows] == list(range(result.steps)), "every step recorded once, no gaps"
    span, kind = spans(rows), {r["id"]: r["kind"] for r in rows}
    for r in rows:
        if r["parent_id"] is not None:
            assert span[r["parent_id"]][1] <= span[r["id"]][0], (
                f"step {r['id']} began before its parent ended"
            )
    pairs = [(a, b) for a in span for b in span if a < b and overlapping(span[a], span[b])]
    assert pairs, "no two steps ran at the same time"
    assert all(kind[a] not in ALONE and kind[b] not in ALONE for a, b in pairs), pairs
    assert len({r["template_id"] for r in rows if r["kind"] == "model"}) == sum(
        r["kind"] == "model" for r in rows
    ), "no hypothesis was tested twice"


def test_an_interrupted_parallel_run_resumes_without_losing_or_repeating_a_step(tmp_path, example):
    out = tmp_path / "run"
    seen = []

    def interrupt_after_seven(progress):
        seen.append(progress.step.id)
        if len(seen) == 7:
            raise KeyboardInterrupt

    first = dsassist.run(
        example("penguins"),
        "species",
        out,
        budget="90s",
        max_steps=12,
        parallel=2,
        store="none",
        on_step=interrupt_after_seven,
    )
    assert first.status == "interrupted"
    before = steps(out)
    assert {r["id"] for r in before} >= set(seen), "a step reported done was not recorded"
    resumed = dsassist.resume(out, store="none")
    after = steps(out)
    assert resumed.status == "finished" and (out / "model.pkl").is_file()
    assert after[: len(before)] == before, "recorded steps are kept as they were"
    ids = [r["id"] for r in after]
    assert len(ids) == len(set(ids)) == resumed.steps
    tested = [(r["template_id"], r["kind"]) for r in after if r["kind"] in ("model", "baseline")]
    assert len(tested) == len(set(tested)), "a hypothesis finished before the interruption ran again"

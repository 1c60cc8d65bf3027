"""Kill a real run at several points, resume it, and get what an uninterrupted run gives; branch."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dsassist
from dsassist import examples
from dsassist.sandbox import Sandbox
from dsassist.sandbox.checkpoint import Checkpoint

pytestmark = pytest.mark.slow
DATA = Path(__file__).parent / "data"
OPTIONS = ("--budget", "5m", "--seed", "0", "--max-steps", "20")


def steps(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "provenance.db") as c:
        return c.execute(
            "select id, parent_id, template_id, verdict, score from steps order by id"
        ).fetchall()


def count_steps(out: Path) -> int:
    try:
        with sqlite3.connect(out / "provenance.db", timeout=1) as c:
            return c.execute("select count(*) from steps").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, list[tuple]]:
    out = tmp_path_factory.mktemp("reference") / "run"
    # no project store: earlier runs' priors would reorder the steps (tests/store covers them)
    dsassist.run(examples.path("titanic"), "survived", out, budget="5m", seed=0, max_steps=20, store="none")
    return out, steps(out)


def run_and_kill(out: Path, after_steps: int) -> None:
    """Start the CLI in its own process group and `kill -9` the group once enough steps are recorded.

    Its project store is its own (empty at the start, like the reference run's none)."""
    command = [sys.executable, "-m", "dsassist", "run", str(examples.path("titanic")), "--target", "survived"]
    process = subprocess.Popen(
        [*command, *OPTIONS, "--out", str(out), "--store", str(out.parent / "project.db")],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while count_steps(out) < after_steps and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize("after_steps", [1, 6, 20], ids=["during-setup", "mid-run", "during-report"])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, reference, after_steps):
    ref_out, ref_steps = reference
    out = tmp_path / "run"
    run_and_kill(out, after_steps)
    before = steps(out)
    assert before == ref_steps[: len(before)]  # what was recorded before the kill is kept as it was
    resume = [sys.executable, "-m", "dsassist", "resume", str(out), "--store", str(tmp_path / "project.db")]
    done = subprocess.run(resume, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert steps(out) == ref_steps  # nothing lost, nothing repeated, same scores
    result = json.loads((out / "result.json").read_text())
    reference_result = json.loads((ref_out / "result.json").read_text())
    assert result["best_score"] == reference_result["best_score"]
    assert result["steps"] == len(ref_steps)
    report = (out / "report.md").read_text()
    assert all(f"| {i} |" in report for i in range(len(ref_steps)))
    assert (out / "model.pkl").is_file()
    with sqlite3.connect(out / "provenance.db") as c:
        assert c.execute("pragma integrity_check").fetchone() == ("ok",)
        assert c.execute("select status from runs").fetchone() == ("finished",)


def test_resume_refuses_a_finished_run(reference):
    out, _ = reference
    done = subprocess.run(
        [sys.executable, "-m", "dsassist", "resume", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "already finished" in done.stderr


def test_restored_checkpoint_reproduces_its_step_metric(reference):
    out, ref_steps = reference
    linear = next(s for s in ref_steps if s[2] == "linear")
    checkpoint = Checkpoint.model_validate_json(
        (out / "checkpoints" / f"step-{linear[0]:03d}.json").read_text()
    )
    with Sandbox(out / "work", read_only=(examples.path("titanic"),)) as sb:
        sb.restore(checkpoint)
        r = sb.execute("evaluate(build_pipeline(spec, columns, TASK, SEED), X, y, folds, METRIC, TASK)")
    assert r.ok, r.error
    assert r.records("metrics")[-1]["mean"] == pytest.approx(linear[4], abs=1e-12)


def test_a_branch_from_an_old_step_reproduces_that_steps_metric(tmp_path):
    out = tmp_path / "run"
    result = dsassist.run(
        examples.path("titanic"),
        "survived",
        out,
        budget="5m",
        seed=0,
        max_steps=24,
        explore_share=0.0,
        templates_file=DATA / "branch_templates.py",
    )
    rows = steps(out)
    branch = next(s for s in rows if s[2] == "branch_linear")
    baseline = next(s for s in rows if s[2] == "baseline")
    linear = next(s for s in rows if s[2] == "linear")
    assert branch[1] == baseline[0]  # built on the old baseline step, not on the best
    assert branch[4] == pytest.approx(linear[4], abs=1e-12)  # same state, same folds: same score
    assert result.best_step != branch[0] and result.best_score > branch[4]  # the main line still leads
    final = next(s for s in rows if s[2] == "final")
    assert final[1] == result.best_step  # the refit went back to the best branch

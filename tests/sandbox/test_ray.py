"""Kernels in Ray actors, on a real local Ray: a worker killed mid-step is replaced, and the
step starts again from its parent's checkpoint, recorded as a retry."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

import dsassist
from dsassist.sandbox import WorkerLost

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'dsassist[ray]'")
from dsassist.sandbox.remote import RaySandbox, connect  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    connect(None, parallel=2)
    yield
    ray.shutdown()


def busy_kernel_actors() -> list[int]:
    """Pids of Ray workers whose kernel actor is running a cell right now (Ray names the
    process after the method it runs)."""
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in listing.splitlines() if "ray::KernelActor.execute" in line]


def test_a_killed_worker_is_replaced_and_the_state_comes_back_from_its_checkpoint(tmp_path, local_ray):
    with RaySandbox(tmp_path / "work", pool=0) as sandbox:
        assert sandbox.execute("x = 41").ok
        checkpoint = sandbox.checkpoint("one", replay=["x = 41"])
        lost = sandbox.pid
        threading.Timer(1.0, os.kill, (lost, signal.SIGKILL)).start()
        with pytest.raises(WorkerLost, match="died during execute"):
            sandbox.execute("import time; time.sleep(60)", timeout=120)
        assert sandbox.pid not in (None, lost)
        assert not sandbox.execute("x").ok, "the new worker's kernel starts empty"
        sandbox.branch(checkpoint)
        assert sandbox.execute("print(x + 1)").stdout == "42\n"


def test_a_run_on_ray_recovers_a_worker_killed_mid_step(tmp_path, example, local_ray):
    out, killed, modelling = tmp_path / "run", [], threading.Event()

    def kill_one_busy_worker() -> None:
        modelling.wait(120)
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for pid in busy_kernel_actors():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_busy_worker, daemon=True)
    killer.start()
    result = dsassist.run(
        example("penguins"),
        "species",
        out,
        budget="120s",
        max_steps=14,
        parallel=2,
        executor="ray",
        store="none",
        on_step=lambda p: modelling.set() if p.step.kind == "baseline" else None,
    )
    killer.join()
    assert killed, "no busy kernel worker was found to kill"
    assert result.status == "finished" and (out / "model.pkl").is_file()
    with sqlite3.connect(out / "provenance.db") as c:
        lost = c.execute("select step_id, attempt from executions where error_name = 'WorkerLost'").fetchall()
        assert len(lost) == 1, lost
        ((step_id, attempt),) = lost
        verdict, attempts = c.execute(
            "select verdict, attempts from steps where id = ?", (step_id,)
        ).fetchone()
        assert attempts > attempt + 1, "a later attempt replaced the lost one"
        assert verdict != "failed", "the step was retried on a new worker and finished"
        retry = c.execute(
            "select rule from fixes where step_id = ? and rule = 'retried on a new worker'", (step_id,)
        ).fetchall()
        assert retry, "the retry is recorded"
        ids = [row[0] for row in c.execute("select id from steps order by id")]
    assert ids == list(range(result.steps)), "no step lost, none duplicated"


def test_an_unreachable_cluster_is_one_line_and_writes_nothing(tmp_path, example):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "dsassist", "run", str(example("penguins")), "--target", "species"]
    done = subprocess.run(
        [*command, "--out", str(out), "--executor", "ray", "--ray-address", "ray://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip() == "error: cannot reach the Ray cluster at ray://127.0.0.1:1: Connection refused"
    )
    with pytest.raises(dsassist.DSAssistError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:1"):
        dsassist.run(example("penguins"), "species", out, executor="ray", ray_address="127.0.0.1:1")
    assert not out.exists()

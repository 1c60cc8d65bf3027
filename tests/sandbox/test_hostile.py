"""Hostile cells as ordinary steps of a real run: the sandbox contains them, the run goes on.

One run on the shipped Titanic example carries every template of tests/data/hostile_templates.py
(a network connection, reading the controller's home and environment, writing outside the run
folder, deleting or dropping the provenance database, memory and fork bombs, loops, an output
flood, exits, kills and a segfault). A clean run with the same seed, through the command line,
runs alongside it; the tests below read both run folders.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

import dsassist
from dsassist.sandbox.isolation import KERNEL_UID, bubblewrap_works

if shutil.which("bwrap") is None or not bubblewrap_works():
    pytest.skip(
        "bubblewrap (bwrap) is missing or cannot create namespaces here: the network and "
        "filesystem isolation these tests check needs it",
        allow_module_level=True,
    )

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / "data"
_spec = importlib.util.spec_from_file_location("hostile_templates", DATA / "hostile_templates.py")
hostile = importlib.util.module_from_spec(_spec)  # EXPECTED, KERNEL_REPLACED, CANARY, SECRET_ENV
_spec.loader.exec_module(hostile)
SEED = 0
OPTIONS = {"budget": "5m", "max_steps": 60, "seed": SEED}
SECRET_TOKEN = "tok-" + uuid.uuid4().hex
SECRET_KEY = "-----BEGIN OPENSSH PRIVATE KEY----- " + uuid.uuid4().hex


def kernel_user_tasks() -> int:
    """Processes and threads of the user kernels run as, on the whole machine.

    The `processes` limit is RLIMIT_NPROC of that user, so every other sandbox's kernels count
    against it: the run's limit is set above what is already there.
    """
    uid = KERNEL_UID if os.geteuid() == 0 else os.getuid()
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid:
            total += int(fields["Threads"])
    return total


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` with the sha256 of its content (folders map to '')."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    return out


@pytest.fixture(scope="module")
def hostile_run(example):
    """The hostile run and, in parallel, a clean run with the same seed; yields what the tests read."""
    base = Path(tempfile.mkdtemp(prefix="dsassist-hostile-", dir="/var/tmp"))  # not under the masked /tmp
    base.chmod(0o755)
    outside, victim = base / "outside", base / "victim"
    for folder in (outside, victim):
        folder.mkdir()
        folder.chmod(0o777)  # only the sandbox, not file permissions, keeps the kernel out
    (outside / "sentinel.txt").write_text("must not change")
    (outside / "keep").mkdir()
    (outside / "keep" / "data.csv").write_text("a,b\n1,2\n")
    home_probe = Path.home() / f".dsassist-probe-{uuid.uuid4().hex}"
    home_probe.write_text(SECRET_KEY)
    home_probe.chmod(0o644)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    before = {"outside": snapshot(outside), "victim": snapshot(victim), "base": sorted(os.listdir(base))}

    clean_out = base / "clean"
    clean = subprocess.Popen(
        [sys.executable, "-m", "dsassist", "run", str(example("titanic")), "--target", "survived"]
        + ["--out", str(clean_out), "--budget", "5m", "--max-steps", "60", "--seed", str(SEED)]
        + ["--memory-mb", "2048", "--processes", "4096"],  # out of reach of the fork bomb
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = base / "run"
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DSASSIST_HOSTILE_PORT", str(listener.getsockname()[1]))
            mp.setenv("DSASSIST_HOSTILE_HOME_PROBE", str(home_probe))
            mp.setenv(hostile.SECRET_ENV, SECRET_TOKEN)
            mp.setenv("OPENAI_API_KEY", SECRET_TOKEN)
            result = dsassist.run(
                example("titanic"),
                target="survived",
                out=out,
                templates_file=DATA / "hostile_templates.py",
                cell_timeout_s=8,
                memory_mb=2048,
                processes=kernel_user_tasks() + 96,
                **OPTIONS,
            )
        clean_output, _ = clean.communicate(timeout=300)
        assert clean.returncode == 0, clean_output
        try:
            listener.accept()
            connected = True
        except BlockingIOError:
            connected = False
        yield {
            "result": result,
            "out": out,
            "clean": json.loads((clean_out / "result.json").read_text()),
            "clean_out": clean_out,
            "base": base,
            "outside": outside,
            "victim": victim,
            "before": before,
            "home_probe": home_probe,
            "connected": connected,
        }
    finally:
        if clean.poll() is None:
            clean.kill()
        listener.close()
        home_probe.unlink(missing_ok=True)
        shutil.rmtree(base, ignore_errors=True)


def rows(out: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(out / "provenance.db") as c:
        return c.execute(sql, args).fetchall()


def hostile_steps(out: Path) -> dict[str, dict]:
    """Each hostile template's step and its (single) last execution, by template id."""
    found = rows(
        out,
        "select s.id, s.template_id, s.verdict, s.error, s.attempts, e.ok, e.error_name, e.error_value, "
        "e.stdout from steps s join executions e on e.step_id = s.id "
        "where s.template_id like 'hostile_%' order by s.id, e.attempt",
    )
    keys = ("id", "template", "verdict", "error", "attempts", "ok", "error_name", "error_value", "stdout")
    return {r[1]: dict(zip(keys, r, strict=True)) for r in found}  # the last attempt wins


def test_the_run_finishes_with_its_final_model(hostile_run):
    result, out = hostile_run["result"], hostile_run["out"]
    assert result.status == "finished"
    assert result.stop_reason == "the final model is saved"
    for name in ("result.json", "model.pkl", "model.json", "report.md", "notebook.ipynb", "provenance.db"):
        assert (out / name).is_file(), name
    assert json.loads((out / "result.json").read_text()) == json.loads(result.model_dump_json())
    assert result.baseline_score is not None and result.best_score > result.baseline_score


def test_every_hostile_step_ran_and_failed_with_its_cause_named(hostile_run):
    steps = hostile_steps(hostile_run["out"])
    assert set(hostile.EXPECTED) <= set(steps), f"never ran: {set(hostile.EXPECTED) - set(steps)}"
    for template, names in hostile.EXPECTED.items():
        step = steps[template]
        assert step["verdict"] == "failed", (template, step["verdict"], step["error"])
        assert not step["ok"]
        assert step["error_name"] in names, (template, step["error_name"], step["error_value"])
        assert step["error"].startswith(f"{step['error_name']}: "), (template, step["error"])


def test_a_dead_kernel_is_replaced_and_restored_from_the_last_kept_step(hostile_run):
    """After a kill the namespace is the last checkpoint; after a caught error the kernel is the same."""
    steps = hostile_steps(hostile_run["out"])
    kept = [i for (i,) in rows(hostile_run["out"], "select id from steps where verdict != 'failed'")]
    for template in hostile.EXPECTED:
        value = steps[template]["error_value"]
        if template in hostile.KERNEL_REPLACED:
            last_kept = max(i for i in kept if i < steps[template]["id"])
            assert value.endswith(f"restored from checkpoint step-{last_kept:03d}"), (template, value)
        else:
            assert "fresh kernel" not in value, (template, value)


def test_later_steps_see_the_kernel_state_intact(hostile_run):
    """Each hostile cell prints its kernel's start time and the canary before it attacks.

    The canary is there in every step (kept through the kernel, or restored from the checkpoint);
    the kernel changes between two steps exactly when a step in between lost its kernel.
    """
    steps = sorted(hostile_steps(hostile_run["out"]).values(), key=lambda s: s["id"])
    seen = []
    for step in steps:
        if step["template"] == "hostile_canary":
            continue
        match = re.search(r"kernel (\d+) canary (\S+)", step["stdout"])
        # a cell whose kernel dies at once may lose its buffered output: judged by the next one
        if match is None:
            assert step["template"] in hostile.KERNEL_REPLACED, (step["template"], step["stdout"][:200])
            continue
        assert match.group(2) == hostile.CANARY, step["template"]
        seen.append((step["id"], match.group(1)))
    assert len(seen) >= len(hostile.EXPECTED) - len(hostile.KERNEL_REPLACED)
    replaced_at = {s["id"] for s in steps if s["template"] in hostile.KERNEL_REPLACED}
    for (a, kernel_a), (b, kernel_b) in zip(seen, seen[1:], strict=False):
        replaced = any(a <= i < b for i in replaced_at)
        assert (kernel_a != kernel_b) == replaced, (a, b, kernel_a, kernel_b)


def test_the_output_flood_is_capped_in_the_record(hostile_run):
    flood = hostile_steps(hostile_run["out"])["hostile_output_flood"]
    assert flood["stdout"].startswith("kernel ")
    assert "characters cut" in flood["stdout"]
    assert len(flood["stdout"]) <= 256 * 1024 + 100


def test_steps_after_the_hostile_ones_still_ran(hostile_run):
    out = hostile_run["out"]
    last_hostile = max(s["id"] for s in hostile_steps(out).values())
    after = rows(out, "select template_id, verdict, score from steps where id > ? order by id", last_hostile)
    tuning = [r for r in after if r[0] == "tune"]
    assert tuning and all(v in ("accepted", "rejected") and score is not None for _, v, score in tuning)
    assert after[-1][:2] == ("final", "done")


def test_scores_match_a_clean_run_with_the_same_seed(hostile_run):
    """The hostile steps change nothing the other steps compute: same steps, same scores, same best."""
    result, clean = hostile_run["result"], hostile_run["clean"]
    sql = "select template_id, verdict, score from steps where template_id not like 'hostile_%' order by id"
    assert rows(hostile_run["out"], sql) == rows(hostile_run["clean_out"], sql)
    assert result.best_score == pytest.approx(clean["best_score"], abs=1e-12)
    assert result.baseline_score == pytest.approx(clean["baseline_score"], abs=1e-12)


def test_nothing_outside_the_run_folder_changed(hostile_run):
    before, outside = hostile_run["before"], hostile_run["outside"]
    assert snapshot(outside) == before["outside"]
    assert not (outside / "planted.txt").exists()
    assert sorted(os.listdir(hostile_run["base"])) == sorted([*before["base"], "run", "clean"])
    assert hostile_run["home_probe"].read_text() == SECRET_KEY
    assert not hostile_run["connected"], "a kernel reached a service on the host"


def test_no_secret_reached_the_run_folder(hostile_run):
    out = hostile_run["out"]
    for path in out.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            for secret in (SECRET_TOKEN, SECRET_KEY):
                assert secret.encode() not in data, f"{secret[:12]}... in {path.relative_to(out)}"


def test_the_database_is_intact_and_agrees_with_result_json(hostile_run):
    out, result = hostile_run["out"], hostile_run["result"]
    assert rows(out, "pragma integrity_check") == [("ok",)]
    assert rows(out, "pragma foreign_key_check") == []
    steps = rows(out, "select verdict, attempts from steps")
    assert len(steps) == result.steps
    assert sum(v == "failed" for v, _ in steps) == result.failed_steps >= len(hostile.EXPECTED)
    assert sum(a > 1 and v != "failed" for v, a in steps) == result.fixed_steps
    assert rows(out, "select count(*) from executions")[0][0] == sum(a for _, a in steps)
    assert rows(out, "select count(*) from fixes")[0][0] == sum(a - 1 for _, a in steps)
    ((status, best_step, best_score),) = rows(out, "select status, best_step, best_score from runs")
    assert (status, best_step) == ("finished", result.best_step)
    assert best_score == pytest.approx(result.best_score)
    assert rows(out, "select count(*) from datasets")[0][0] == 1
    assert len(list((out / "steps").glob("*.md"))) == result.steps


@pytest.mark.xfail(
    strict=True,
    reason="src bug: the controller (root) opens <run>/work/kernel.log, which the kernel owns, "
    "for every new kernel; a cell that swaps it for a symlink makes the controller create and "
    "append to any file on the machine (with the next kernel's output, which that kernel writes)",
)
def test_a_kernel_cannot_make_the_controller_write_outside_the_run_folder(hostile_run):
    steps = hostile_steps(hostile_run["out"])
    assert steps["hostile_symlink"]["verdict"] != "failed"  # the swap itself is allowed in work/
    assert snapshot(hostile_run["victim"]) == hostile_run["before"]["victim"]


@pytest.mark.xfail(
    strict=True,
    reason="src bug: checkpoint objects live in <run>/work/.checkpoints, which the kernel may "
    "write; after a cell corrupts them and the kernel dies, Sandbox.execute raises RuntimeError "
    "(restore: 'checkpoint object ... is corrupt') and the whole run ends without result.json",
)
def test_a_tampered_checkpoint_store_does_not_end_the_run(tmp_path, example):
    out = tmp_path / "run"
    try:
        result = dsassist.run(
            example("titanic"),
            target="survived",
            out=out,
            templates_file=DATA / "hostile_checkpoint_templates.py",
            cell_timeout_s=8,
            memory_mb=2048,
            budget="2m",
            max_steps=8,
            seed=SEED,
        )
    except RuntimeError as exc:
        pytest.fail(f"the run ended with {type(exc).__name__}: {str(exc)[-200:]}")
    assert result.status == "finished" and (out / "result.json").is_file()
    ((verdict, error_name),) = rows(
        out,
        "select s.verdict, e.error_name from steps s join executions e on e.step_id = s.id "
        "where s.template_id = 'hostile_tamper_checkpoints'",
    )
    assert (verdict, error_name) == ("failed", "KernelDied")
    assert rows(out, "select verdict from steps order by id desc limit 1") == [("done",)]

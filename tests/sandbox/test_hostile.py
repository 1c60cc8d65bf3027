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
import itertools
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
from dsassist.config import RunConfig
from dsassist.sandbox.isolation import bubblewrap_works

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
# no open-ended parameter search (where the library has it): the run ends when every
# hypothesis is tested, and the clean run makes the same choices
EXPLORE = {"explore_share": 0.0} if "explore_share" in RunConfig.model_fields else {}
OPTIONS = {"budget": "5m", "max_steps": 80, "seed": SEED, **EXPLORE}
# a folder for the run outside the masked /tmp, so that the kernel sees what is next to it
VISIBLE_TMP = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
SECRET_TOKEN = "tok-" + uuid.uuid4().hex
SECRET_KEY = "-----BEGIN OPENSSH PRIVATE KEY----- " + uuid.uuid4().hex


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
    base = Path(tempfile.mkdtemp(prefix="dsassist-hostile-", dir=VISIBLE_TMP))
    home_probe = Path.home() / f".dsassist-probe-{uuid.uuid4().hex}"
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    clean = None
    try:
        base.chmod(0o755)
        outside, victim, trojan = base / "outside", base / "victim", base / "trojan"
        for folder in (outside, victim, trojan):
            folder.mkdir()
            folder.chmod(0o777)  # only the sandbox, not file permissions, keeps the kernel out
        (outside / "sentinel.txt").write_text("must not change")
        (outside / "keep").mkdir()
        (outside / "keep" / "data.csv").write_text("a,b\n1,2\n")
        home_probe.write_text(SECRET_KEY)
        home_probe.chmod(0o644)
        before = {"outside": snapshot(outside), "victim": snapshot(victim), "base": sorted(os.listdir(base))}

        clean_out, clean_log = base / "clean", base / "clean.log"
        # a high process limit keeps the clean run out of reach of the hostile run's fork bomb
        processes = ["--processes", "4096"] if os.geteuid() == 0 else []
        clean = subprocess.Popen(
            [sys.executable, "-m", "dsassist", "run", str(example("titanic")), "--target", "survived"]
            + ["--out", str(clean_out), "--budget", "5m", "--max-steps", "80", "--seed", str(SEED)]
            + (["--explore-share", "0"] if EXPLORE else [])
            + ["--memory-mb", "2048", *processes]
            + ["--store", "none"],  # both runs plan alone: no priors from each other
            stdout=clean_log.open("w"),
            stderr=subprocess.STDOUT,
        )
        out = base / "run"
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
                # bounds the endless loops; the final refit of an ensemble takes 7-10 s here
                cell_timeout_s=15,
                memory_mb=2048,
                processes=128,
                store="none",
                **OPTIONS,
            )
        clean.wait(timeout=300)
        assert clean.returncode == 0, clean_log.read_text()[-3000:]
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
            "trojan": trojan,
            "before": before,
            "home_probe": home_probe,
            "connected": connected,
        }
    finally:
        if clean is not None and clean.poll() is None:
            clean.kill()
            clean.wait()
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
    assert result.stop_reason  # why it ended: budget, or every hypothesis tested
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
    for (a, kernel_a), (b, kernel_b) in itertools.pairwise(seen):
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
    assert sorted(os.listdir(hostile_run["base"])) == sorted([*before["base"], "run", "clean", "clean.log"])
    assert snapshot(hostile_run["victim"]) == before["victim"]
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


def test_links_swapped_into_the_work_folder_lead_nowhere(hostile_run):
    """The kernel log and the images are written by the controller (root), never through the
    links a kernel may leave in its own folder."""
    steps = hostile_steps(hostile_run["out"])
    assert steps["hostile_symlink"]["verdict"] != "failed"  # the swap itself is allowed in work/
    assert (hostile_run["out"] / "work" / "kernel.log").is_symlink()
    assert snapshot(hostile_run["victim"]) == hostile_run["before"]["victim"]


def test_predict_does_not_run_code_from_the_kernel(hostile_run, example):
    """The model was pickled by untrusted code: predict unpickles it in a sandbox, where the
    trojan's write fails (and with it the prediction) instead of landing on the host."""
    assert hostile_steps(hostile_run["out"])["hostile_trojan_model"]["verdict"] != "failed"
    with pytest.raises(dsassist.DSAssistError, match="Read-only file system"):
        dsassist.predict(hostile_run["out"], example("titanic"))
    assert not (hostile_run["trojan"] / "predict.txt").exists()


def test_a_tampered_checkpoint_store_does_not_end_the_run(tmp_path, example):
    """A cell corrupts the checkpoint objects in its folder and kills its kernel: the last
    checkpoint is rebuilt by replaying its cells, and the run goes on."""
    out = tmp_path / "run"
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
        **EXPLORE,
    )
    assert result.status == "finished" and (out / "result.json").is_file()
    assert rows(out, "pragma integrity_check") == [("ok",)]
    ((verdict, error_name, error_value),) = rows(
        out,
        "select s.verdict, e.error_name, e.error_value from steps s join executions e on e.step_id = s.id "
        "where s.template_id = 'hostile_tamper_checkpoints'",
    )
    assert (verdict, error_name) == ("failed", "KernelDied")
    assert "restored from checkpoint step-" in error_value, error_value
    after = rows(
        out,
        "select template_id, verdict from steps where id > (select id from steps "
        "where template_id = 'hostile_tamper_checkpoints') order by id",
    )
    assert after and all(v != "failed" for _, v in after)
    assert after[-1] == ("final", "done")

"""The whole loop through the command line, on the shipped example datasets."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient
from typer.testing import CliRunner

from dsassist.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()
DATA = Path(__file__).parent / "data"
CASES = {"titanic": "survived", "penguins": "species", "mpg": "mpg"}


def cli(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def run_cli(data: Path, target: str, out: Path, *extra: str):
    result = cli(
        "run",
        data,
        "--target",
        target,
        "--budget",
        "3m",
        "--seed",
        "0",
        "--max-steps",
        "20",
        "--out",
        out,
        *extra,
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "result.json").read_text())


@pytest.fixture(scope="module", params=list(CASES))
def finished(request, tmp_path_factory, example):
    name = request.param
    out = tmp_path_factory.mktemp(name) / "run"
    return name, out, run_cli(example(name), CASES[name], out, "--question", f"What drives {CASES[name]}?")


def db_rows(out: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(out / "provenance.db") as c:
        return c.execute(sql).fetchall()


def test_run_beats_the_baseline_with_enough_steps(finished):
    _, _, result = finished
    assert result["steps"] >= 8
    assert result["status"] == "finished"
    gain = result["best_score"] - result["baseline_score"]
    assert (gain if result["higher_is_better"] else -gain) > 0


def test_run_folder_files_exist_and_agree(finished):
    _, out, result = finished
    for name in ("report.md", "notebook.ipynb", "model.pkl", "model.json", "provenance.db", "result.json"):
        assert (out / name).is_file(), name
    ((score, std),) = db_rows(out, f"select score, std from steps where id = {result['best_step']}")
    assert score == pytest.approx(result["best_score"]) and std == pytest.approx(result["best_std"])
    assert db_rows(out, "select count(*) from steps")[0][0] == result["steps"]
    run_best = db_rows(out, "select best_step, best_score, status from runs")[0]
    assert run_best == (result["best_step"], pytest.approx(result["best_score"]), "finished")
    report = (out / "report.md").read_text()
    assert f"{result['best_score']:.4f} ± {result['best_std']:.4f}" in report
    notes = sorted((out / "steps").glob("*.md"))
    assert len(notes) == result["steps"]
    (sha,) = db_rows(out, "select sha256 from datasets")[0]
    assert len(sha) == 64


def test_notebook_reexecutes_to_the_reported_score(finished, tmp_path):
    _, out, result = finished
    nb = nbformat.read(out / "notebook.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    mime = "application/vnd.dsassist.metrics+json"
    scores = [
        o["data"][mime]["mean"]
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if mime in o.get("data", {})
    ]
    assert scores[-1] == pytest.approx(result["best_score"], abs=1e-9)
    assert (tmp_path / "model.pkl").is_file()


def test_predict_keeps_rows_and_adds_predictions(finished, example, tmp_path):
    name, out, result = finished
    new = pd.read_csv(example(name)).drop(columns=[CASES[name]]).sample(frac=1.0, random_state=1).head(50)
    new.to_csv(tmp_path / "new.csv", index=False)
    response = cli("predict", out, tmp_path / "new.csv", "-o", tmp_path / "pred.csv")
    assert response.exit_code == 0, response.output
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == len(new)
    assert list(pred.columns[: new.shape[1]]) == list(new.columns)
    pd.testing.assert_series_equal(
        pred[new.columns[0]], new[new.columns[0]].reset_index(drop=True), check_dtype=False
    )
    if result["task"] == "regression":
        assert pred["prediction"].notna().all()
    else:
        proba = pred.filter(like="proba_")
        assert proba.shape[1] == pd.read_csv(example(name))[CASES[name]].nunique()
        assert proba.sum(axis=1).round(6).eq(1).all()


def test_leak_and_duplicates_are_excluded_on_titanic(tmp_path, example):
    out = tmp_path / "run"
    run_cli(example("titanic"), "survived", out, "--max-steps", "6")
    report = (out / "report.md").read_text()
    assert "`alive`: leak" in report
    assert "`class`: duplicate" in report


def test_injected_faults_are_fixed_in_place_and_recorded(tmp_path, example):
    out = tmp_path / "run"
    result = run_cli(example("titanic"), "survived", out, "--templates", DATA / "faulty_templates.py")
    assert result["fixed_steps"] >= 2
    fixes = dict(db_rows(out, "select s.template_id, f.rule from fixes f join steps s on s.id = f.step_id"))
    assert fixes == {"probe_import": "add-missing-import", "probe_column": "use-existing-column"}
    for template in ("probe_import", "probe_column"):
        attempts = db_rows(
            out,
            "select e.ok from executions e join steps s on s.id = e.step_id "
            f"where s.template_id = '{template}' order by e.attempt",
        )
        assert attempts == [(0,), (1,)]
    (verdicts,) = db_rows(out, "select group_concat(verdict) from steps where template_id like 'probe_%'")
    assert "failed" not in verdicts


def test_same_seed_gives_same_steps_and_scores(tmp_path, example):
    runs = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        run_cli(example("penguins"), "species", out, "--max-steps", "10", "--store", "none")
        runs.append(db_rows(out, "select id, parent_id, template_id, verdict, score from steps order by id"))
    assert runs[0] == runs[1]


BAD_INPUTS = {
    "missing file": (lambda d: d / "nope.csv", "survived", "not found"),
    "unsupported format": (lambda d: _write(d / "data.xlsx", b"x"), "survived", "unsupported format"),
    "empty table": (lambda d: _write(d / "empty.csv", b""), "survived", "empty"),
    "not a table": (lambda d: _write(d / "bin.csv", bytes(range(256)) * 4), "survived", "not"),
    "header only": (lambda d: _write(d / "head.csv", b"a,b\n"), "a", "no rows"),
    "unknown target": (lambda d: _titanic(d), "nope", "target column 'nope' not in"),
    "single-valued target": (lambda d: _write(d / "one.csv", b"a,b\n1,2\n1,3\n1,4\n"), "a", "single value"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _titanic(folder: Path) -> Path:
    from dsassist import examples

    return examples.path("titanic")


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_nothing_written(case, tmp_path):
    make, target, expected = BAD_INPUTS[case]
    data, out = make(tmp_path), tmp_path / "out"
    result = cli("run", data, "--target", target, "--out", out)
    assert result.exit_code == 2
    message = result.output.strip()
    assert message.startswith("error:") and expected in message
    assert len(message.splitlines()) == 1
    assert not out.exists()


def test_non_empty_output_folder_is_refused_and_kept(tmp_path, example):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = cli("run", example("tips"), "--target", "tip", "--out", out)
    assert result.exit_code == 2 and "not empty" in result.output
    assert (out / "keep.txt").read_text() == "mine"


def test_predict_names_missing_columns(finished, tmp_path):
    _, out, _ = finished
    (tmp_path / "bad.csv").write_text("unrelated\n1\n")
    result = cli("predict", out, tmp_path / "bad.csv", "-o", tmp_path / "p.csv")
    assert result.exit_code == 2 and "lacks columns" in result.output
    assert not (tmp_path / "p.csv").exists()


def test_console_script_entry_point(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dsassist",
            "run",
            str(tmp_path / "missing.csv"),
            "--target",
            "y",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: data file not found: {tmp_path / 'missing.csv'}"

"""Lineage queries against known synthetic lineage, in SQLite and in PostgreSQL."""

from __future__ import annotations

import json

import pytest
from stores import fill, store_location
from typer.testing import CliRunner

from dsassist.cli import app
from dsassist.errors import DSAssistError
from dsassist.store import ProvenanceStore
from dsassist.store.queries import Lineage

A, B = "a" * 32, "b" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    with store_location(request.param, tmp_path) as where:
        store = ProvenanceStore(where)
        fill(store)
        store.close()
        yield where


@pytest.fixture
def lineage(location):
    store = ProvenanceStore(location)
    yield Lineage(store)
    store.close()


def test_improved_lists_kept_steps_above_the_gain_best_first(lineage):
    rows = lineage.improved("roc_auc", 0.02)
    assert [(r["run_id"], r["step"], r["template_id"]) for r in rows] == [
        (A, 2, "linear"),
        (A, 4, "missing_indicators"),
    ]
    assert rows[1]["gain"] == pytest.approx(0.03) and rows[1]["dataset"] == "/data/titanic.csv"


def test_improved_by_kind_answers_which_feature_engineering_helped(lineage):
    rows = lineage.improved("roc_auc", 0.02, kind="feature_engineering")
    assert [(r["step"], r["template_id"]) for r in rows] == [(4, "missing_indicators")]
    assert [r["step"] for r in lineage.improved("roc_auc", 0.001, kind="feature")] == [4, 5]
    assert [r["template_id"] for r in lineage.improved("rmse", 0.1, kind="feature")] == ["log_target"]
    assert lineage.improved("roc_auc", 0.02, run="bbb") == []  # a run prefix


def test_lineage_is_the_chain_from_the_first_step_with_code_and_gain(lineage):
    rows = lineage.lineage("aaaa", 6)
    assert [r["step"] for r in rows] == [0, 1, 2, 4, 5, 6]
    assert [r["parent"] for r in rows] == [None, 0, 1, 2, 4, 5]
    assert rows[3]["code"] == "# step 4\nrun_missing_indicators()\n"
    assert rows[3]["gain"] == pytest.approx(0.03) and rows[-1]["verdict"] == "rejected"


def test_history_newest_first_and_by_dataset(lineage):
    rows = lineage.history()
    assert [r["run_id"] for r in rows] == [B, A]
    assert rows[1]["winner"] == "log_skewed" and rows[1]["best_score"] == pytest.approx(0.835)
    assert rows[0]["steps"] == 5
    for key in ("titanic.csv", "/data/titanic.csv", "1234ab"):
        assert [r["run_id"] for r in lineage.history(dataset=key)] == [A]
    assert lineage.history(since="2999-01-01") == []


def test_compare_per_template(lineage):
    rows = {r["template_id"]: r for r in lineage.compare("a", "b")}
    assert set(rows) == {
        "setup",
        "baseline",
        "linear",
        "lightgbm",
        "missing_indicators",
        "log_skewed",
        "target_encoding",
        "final",
        "log_target",
    }
    assert (rows["linear"]["a_kept"], rows["linear"]["b_kept"]) == (1, 1)
    assert rows["lightgbm"]["b_tried"] == 0 and rows["log_target"]["a_tried"] == 0
    assert rows["log_target"]["b_best_gain"] == pytest.approx(0.4)


@pytest.mark.parametrize(
    "attack",
    [
        "DELETE FROM steps",
        "COMMIT; DELETE FROM steps",
        "SELECT 1; DELETE FROM steps",
        "SET TRANSACTION READ WRITE; DELETE FROM steps",
        "ATTACH DATABASE '{tmp}/other.db' AS other",
        "VACUUM INTO '{tmp}/copy.db'",
        "PRAGMA query_only = OFF",
        "CREATE TABLE planted (x INTEGER)",
    ],
)
def test_raw_sql_reads_but_cannot_write(lineage, attack, tmp_path):
    assert lineage.sql("SELECT count(*) AS n FROM steps") == [{"n": 13}]
    with pytest.raises(DSAssistError, match="query failed"):
        lineage.sql(attack.format(tmp=tmp_path))
    assert lineage.sql("SELECT count(*) AS n FROM steps") == [{"n": 13}]
    assert not list(tmp_path.glob("*.db"))  # nothing created either


def test_unknown_and_ambiguous_runs_are_one_line_errors(lineage):
    with pytest.raises(DSAssistError, match="no run matches 'zzz'"):
        lineage.lineage("zzz", 1)
    with pytest.raises(DSAssistError, match="no step 99"):
        lineage.lineage("a", 99)


def test_cli_queries_print_tables_and_json(location):
    runner = CliRunner()

    def cli(*args):
        result = runner.invoke(app, [*args, "--store", location], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        return result.output

    rows = json.loads(cli("query", "improved", "--metric", "roc_auc", "--min-gain", "0.02", "--json"))
    assert [r["step"] for r in rows] == [2, 4]
    assert "missing_indicators" in cli("query", "improved", "--metric", "roc_auc", "--min-gain", "0.02")
    assert [r["step"] for r in json.loads(cli("lineage", "aaaa:6", "--json"))] == [0, 1, 2, 4, 5, 6]
    assert "log_target" in cli("history", "--dataset", "mpg.csv")
    assert "target_encoding" in cli("compare", "aaaa", "bbbb")
    assert json.loads(cli("query", "sql", "SELECT count(*) AS n FROM runs", "--json")) == [{"n": 2}]
    bad = runner.invoke(app, ["lineage", "nope:1", "--store", location])
    assert bad.exit_code == 2 and "no run matches 'nope'" in bad.output

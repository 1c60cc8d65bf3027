"""Schema changes only through migrations: every earlier version upgrades to the newest with its
data intact, in SQLite and PostgreSQL; several runs writing one store at once lose nothing."""

from __future__ import annotations

import multiprocessing

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from stores import RUN_A, record_run, store_location

from dsassist.store import ProvenanceStore
from dsassist.store.provenance import MIGRATIONS, engine_for, migrate
from dsassist.store.queries import Lineage


def revisions() -> list[str]:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_revisions_form_one_line():
    assert revisions() == ["0001", "0002", "0003", "0004", "0005"]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize("start", revisions()[:-1])
def test_every_earlier_version_upgrades_with_its_data(kind, start, tmp_path):
    with store_location(kind, tmp_path) as where:
        engine = engine_for(where)
        migrate(engine, start)
        with engine.begin() as c:  # a run as that version stored it (the 0001 tables)
            c.execute(
                text(
                    "INSERT INTO runs (id, created_at, status, question, target, task, metric, seed, config)"
                    " VALUES ('r1', '2026-01-01T00:00:00', 'finished', '', 'y', 'binary', 'roc_auc', 0, '{}')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO datasets (run_id, path, sha256, n_rows, n_cols, format)"
                    " VALUES ('r1', '/d.csv', 'abc', 10, 2, 'csv')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO steps (run_id, id, template_id, kind, hypothesis, params, verdict, metric,"
                    " score, gain, attempts, started_at, duration_s) VALUES ('r1', 0, 'linear', 'model', 'h',"
                    " '{}', 'accepted', 'roc_auc', 0.8, 0.05, 1, '2026-01-01T00:00:00', 1.0)"
                )
            )
        engine.dispose()
        store = ProvenanceStore(where)  # opening a store brings it to the newest version
        tables = set(inspect(store.engine).get_table_names())
        assert {"runs", "steps", "executions", "llm_calls"} <= tables
        indexes = {i["name"] for i in inspect(store.engine).get_indexes("steps")}
        assert "ix_steps_metric_gain" in indexes
        assert [(r["step"], r["gain"]) for r in Lineage(store).improved("roc_auc", 0.01)] == [(0, 0.05)]
        with store.engine.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == revisions()[-1]
        store.close()


def _open(where: str) -> None:
    ProvenanceStore(where).close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_runs_opening_a_new_store_at_once_take_turns_migrating(kind, tmp_path):
    with store_location(kind, tmp_path) as where:
        context = multiprocessing.get_context("spawn")
        openers = [context.Process(target=_open, args=(where,)) for _ in range(3)]
        for p in openers:
            p.start()
        for p in openers:
            p.join(120)
        assert [p.exitcode for p in openers] == [0, 0, 0]


def test_a_file_that_is_not_a_database_is_one_line(tmp_path):
    from dsassist.errors import DSAssistError

    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a database " * 100)
    with pytest.raises(DSAssistError, match="cannot be opened: file is not a database"):
        ProvenanceStore(bogus)
    with pytest.raises(DSAssistError, match="not a database URL"):
        ProvenanceStore("postgresql://u:secret@host:abc/x")


def _write_run(where: str, i: int) -> None:
    store = ProvenanceStore(where)
    record_run(store, f"{i:032d}", f"/data/t{i}.csv", f"{i:064d}", RUN_A, "roc_auc")
    store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_concurrent_writers_lose_nothing(kind, tmp_path):
    with store_location(kind, tmp_path) as where:
        ProvenanceStore(where).close()  # migrated once, as the first run would
        context = multiprocessing.get_context("spawn")
        workers = [context.Process(target=_write_run, args=(where, i)) for i in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(120)
        assert [w.exitcode for w in workers] == [0, 0, 0, 0]
        store = ProvenanceStore(where)
        counts = Lineage(store).sql("SELECT run_id, count(*) AS n FROM steps GROUP BY run_id ORDER BY run_id")
        assert counts == [{"run_id": f"{i:032d}", "n": len(RUN_A)} for i in range(4)]
        store.close()


def test_dead_server_is_one_line_and_nothing_is_written(tmp_path, example):
    from typer.testing import CliRunner

    from dsassist.cli import app

    out = tmp_path / "run"
    dead = "postgresql://postgres@127.0.0.1:9/none"  # nothing listens on port 9
    result = CliRunner().invoke(
        app, ["run", str(example("penguins")), "--target", "species", "--out", str(out), "--store", dead]
    )
    assert result.exit_code == 2
    assert "store postgresql://postgres@127.0.0.1:9/none cannot be opened" in result.output
    assert "Traceback" not in result.output and not out.exists()


@pytest.mark.slow
def test_a_run_is_mirrored_into_the_project_store(tmp_path, example):
    from typer.testing import CliRunner

    from dsassist.cli import app

    project = str(tmp_path / "project.db")
    for name in ("first", "second"):
        args = ["run", str(example("penguins")), "--target", "species", "--out", str(tmp_path / name)]
        result = CliRunner().invoke(app, [*args, "--max-steps", "7", "--store", project])
        assert result.exit_code == 0, result.output
    store = ProvenanceStore(project)
    runs = Lineage(store).history()
    assert len(runs) == 2 and all(r["status"] == "finished" and r["steps"] == 7 for r in runs)
    for run in runs:
        own = ProvenanceStore(tmp_path / ("second" if run is runs[0] else "first") / "provenance.db")
        assert Lineage(own).sql("SELECT id, verdict, score FROM steps ORDER BY id") == Lineage(store).sql(
            f"SELECT id, verdict, score FROM steps WHERE run_id = '{run['run_id']}' ORDER BY id"
        )
        own.close()
    artifacts = Lineage(store).sql("SELECT run_id, step_id, kind, path, sha256 FROM artifacts")
    store.close()
    for run in runs:
        mine = [a for a in artifacts if a["run_id"] == run["run_id"]]
        kinds = {a["kind"]: a for a in mine}
        assert set(kinds) == {"model", "plot", "report", "notebook"}
        final = [a["step_id"] for a in mine if a["path"] == "model.pkl"]
        assert final == [6]  # the final refit made the model (7 steps: 0..6)
        assert any(a["kind"] == "plot" and a["step_id"] == 1 for a in mine)  # the profile's plot
    blobs = list((tmp_path / "artifacts").rglob("*"))
    stored = {b.name for b in blobs if b.is_file()}
    assert stored == {a["sha256"] for a in artifacts}  # every version kept, each content once
    assert len(stored) < len(artifacts)  # the two runs share identical files (the same data's plots)

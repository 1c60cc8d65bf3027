"""The Cypher export answers the documented questions as the SQL queries do.

The statements are loaded into Kùzu, an embedded Cypher database (it wants its node and
relationship tables declared first; the statements themselves are the exported ones), and
into a FalkorDB server when one is configured ($DSASSIST_TEST_FALKORDB=redis://host:port).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from stores import fill
from typer.testing import CliRunner

from dsassist.cli import app
from dsassist.store import ProvenanceStore
from dsassist.store.graph import cypher, literal
from dsassist.store.queries import Lineage

kuzu = pytest.importorskip("kuzu", reason="kuzu (a dev dependency) runs the exported Cypher here")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lineage.md"
KUZU_SCHEMA = """
CREATE NODE TABLE Dataset(sha256 STRING, path STRING, PRIMARY KEY(sha256));
CREATE NODE TABLE Run(id STRING, dataset STRING, target STRING, task STRING, metric STRING,
    status STRING, best_score DOUBLE, best_step INT64, created_at STRING, question STRING, PRIMARY KEY(id));
CREATE NODE TABLE Step(key STRING, run_id STRING, step INT64, template_id STRING, kind STRING,
    hypothesis STRING, verdict STRING, metric STRING, score DOUBLE, gain DOUBLE, lesson STRING,
    PRIMARY KEY(key));
CREATE REL TABLE ON_DATASET(FROM Run TO Dataset);
CREATE REL TABLE HAS_STEP(FROM Run TO Step);
CREATE REL TABLE PARENT_OF(FROM Step TO Step)
"""
DROPPED_SQL = """
SELECT s.run_id, s.id AS step, s.template_id, l.text FROM steps s
JOIN datasets d ON d.run_id = s.run_id
LEFT JOIN lessons l ON l.run_id = s.run_id AND l.step_id = s.id
WHERE d.path LIKE '%titanic.csv' AND s.verdict = 'rejected' ORDER BY s.run_id, s.id
"""
FAMILIES_SQL = """
SELECT kind AS family, count(*) AS tried, sum(CASE WHEN verdict = 'accepted' THEN 1 ELSE 0 END) AS kept
FROM steps WHERE kind IN ('model', 'feature', 'tuning', 'ensemble', 'explore')
GROUP BY kind ORDER BY kind
"""
A = "a" * 32


def documented() -> dict[str, str]:
    """The Cypher blocks of docs/lineage.md, by the name in their first comment."""
    blocks = re.findall(r"```cypher\n// (\w+):[^\n]*\n(.*?)```", DOCS.read_text(), re.DOTALL)
    return {name: body for name, body in blocks}


@pytest.fixture
def store(tmp_path):
    store = ProvenanceStore(tmp_path / "p.db")
    fill(store)
    yield store
    store.close()


@pytest.fixture
def graph(store, tmp_path):
    connection = kuzu.Connection(kuzu.Database(str(tmp_path / "kuzu")))
    for statement in KUZU_SCHEMA.split(";"):
        connection.execute(statement)
    for _ in range(2):  # loading twice changes nothing: every statement MERGEs
        for statement in cypher(store):
            connection.execute(statement)

    def ask(query: str, **params) -> list[dict]:
        result = connection.execute(query, params)
        names = result.get_column_names()
        rows = []
        while result.has_next():
            rows.append(dict(zip(names, result.get_next(), strict=True)))
        return rows

    return ask


def test_the_graph_holds_every_run_step_and_parent_link(graph):
    assert graph("MATCH (s:Step) RETURN count(*) AS n") == [{"n": 13}]
    assert graph("MATCH (:Step)-[r:PARENT_OF]->(:Step) RETURN count(*) AS n") == [{"n": 11}]
    assert graph("MATCH (:Run)-[:ON_DATASET]->(d:Dataset) RETURN d.path AS p ORDER BY p") == [
        {"p": "/data/mpg.csv"},
        {"p": "/data/titanic.csv"},
    ]


def test_documented_questions_answer_as_the_sql_queries(graph, store):
    queries, lineage = documented(), Lineage(store)
    assert set(queries) == {"improved", "lineage", "dropped", "families"}

    rows = graph(queries["improved"], metric="roc_auc", min_gain=0.02)
    sql = lineage.improved("roc_auc", 0.02, kind="feature")
    assert [(r["run_id"], r["step"]) for r in rows] == [(r["run_id"], r["step"]) for r in sql] == [(A, 4)]

    rows = graph(queries["lineage"], key=f"{A}:6")
    chain = lineage.lineage(A, 6)
    assert [r["step"] for r in rows] + [6] == [r["step"] for r in chain]
    assert [r["gain"] for r in rows] == pytest.approx([r["gain"] for r in chain[:-1]], nan_ok=True)

    rows = graph(queries["dropped"], file="titanic.csv", since="2000-01-01")
    sql = lineage.sql(DROPPED_SQL)
    assert [(r["run_id"], r["step"], r["template"], r["why"]) for r in rows] == [
        tuple(r.values()) for r in sql
    ]
    assert [r["template"] for r in rows] == ["lightgbm", "target_encoding"]

    rows = graph(queries["families"])
    sql = lineage.sql(FAMILIES_SQL)
    assert (
        rows
        == sql
        == [{"family": "feature", "tried": 4, "kept": 3}, {"family": "model", "tried": 3, "kept": 2}]
    )


def test_literals_escape_quotes_backslashes_and_newlines():
    assert literal("it's a \\ path\nnext") == "'it\\'s a \\\\ path\\nnext'"
    assert [literal(v) for v in (None, True, 3, 0.5, float("nan"), 1e20)] == [
        "null",
        "true",
        "3",
        "0.5",
        "null",
        "1e20",
    ]


def test_export_command_writes_the_statements(store, tmp_path):
    out = tmp_path / "lineage.cypher"
    result = CliRunner().invoke(
        app, ["export", "--format", "cypher", "-o", str(out), "--store", store.location]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == list(cypher(store))


@pytest.mark.skipif(
    "DSASSIST_TEST_FALKORDB" not in os.environ,
    reason="no FalkorDB server: set DSASSIST_TEST_FALKORDB=redis://host:port (falkordblite, the embedded"
    " one, needs Python >= 3.12 and glibc >= 2.38; this machine has 3.11 and 2.36)",
)
def test_falkordb_answers_the_same(store):
    from falkordb import FalkorDB

    from dsassist.store.graph import sync_falkordb

    url = os.environ["DSASSIST_TEST_FALKORDB"]
    sync_falkordb(store, url, graph="dsassist_test")
    host, port = url.split("//")[1].split(":")
    g = FalkorDB(host=host, port=int(port)).select_graph("dsassist_test")
    try:
        rows = g.query(documented()["improved"], {"metric": "roc_auc", "min_gain": 0.02}).result_set
        assert [tuple(r[:2]) for r in rows] == [(A, 4)]
    finally:
        g.delete()

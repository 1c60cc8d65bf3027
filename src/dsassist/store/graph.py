"""The lineage as a graph: Cypher statements for Neo4j, Memgraph or FalkorDB.

    (:Dataset {sha256, path})<-[:ON_DATASET]-(:Run {id, target, task, metric, status, best_score, ...})
    (:Run)-[:HAS_STEP]->(:Step {key: "RUN:ID", run_id, step, template_id, kind, hypothesis,
                                verdict, metric, score, gain, lesson})
    (:Step)-[:PARENT_OF]->(:Step)

Every statement is a MERGE keyed on an identifier, so exporting or syncing the same runs
twice changes nothing. docs/lineage.md has the example questions as Cypher queries.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select

from dsassist.errors import DSAssistError
from dsassist.store import schema
from dsassist.store.provenance import ProvenanceStore

RUN_FIELDS = ("target", "task", "metric", "status", "best_score", "best_step", "created_at", "question")
STEP_FIELDS = ("run_id", "step", "template_id", "kind", "hypothesis", "verdict", "metric", "score", "gain")


def literal(value: Any) -> str:
    """A Cypher literal: strings single-quoted with backslash escapes, numbers as they are."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):  # 1e+20 is not Cypher everywhere; 1e20 is
        return repr(value).replace("e+", "e") if math.isfinite(value) else "null"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return f"'{text}'"


def _merge(label: str, key: str, props: dict[str, Any]) -> str:
    """MERGE a node on its key and SET its other (non-null) properties."""
    sets = ", ".join(f"n.{k} = {literal(v)}" for k, v in props.items() if k != key and v is not None)
    return f"MERGE (n:{label} {{{key}: {literal(props[key])}}})" + (f" SET {sets}" if sets else "") + ";"


def _link(a: tuple[str, str, Any], rel: str, b: tuple[str, str, Any]) -> str:
    (la, ka, va), (lb, kb, vb) = a, b
    return (
        f"MATCH (a:{la} {{{ka}: {literal(va)}}}), (b:{lb} {{{kb}: {literal(vb)}}}) MERGE (a)-[:{rel}]->(b);"
    )


def cypher(store: ProvenanceStore, run_ids: list[str] | None = None) -> Iterator[str]:
    """The statements that project the store's runs (all, or `run_ids`) into a graph: nodes
    first, then relationships."""
    runs, datasets, steps, lessons = schema.runs, schema.datasets, schema.steps, schema.lessons
    run_query = select(runs, datasets.c.path, datasets.c.sha256).join(
        datasets, datasets.c.run_id == runs.c.id
    )
    step_query = select(steps, lessons.c.text.label("lesson")).outerjoin(
        lessons, (lessons.c.run_id == steps.c.run_id) & (lessons.c.step_id == steps.c.id)
    )
    if run_ids is not None:
        run_query = run_query.where(runs.c.id.in_(run_ids))
        step_query = step_query.where(steps.c.run_id.in_(run_ids))
    links: list[str] = []
    with store.engine.connect() as c:
        for run in c.execute(run_query.order_by(runs.c.created_at)).mappings():
            yield _merge("Dataset", "sha256", {"sha256": run["sha256"], "path": run["path"]})
            yield _merge(
                "Run", "id", {"id": run["id"], "dataset": run["path"], **{k: run[k] for k in RUN_FIELDS}}
            )
            links.append(_link(("Run", "id", run["id"]), "ON_DATASET", ("Dataset", "sha256", run["sha256"])))
        for step in c.execute(step_query.order_by(steps.c.run_id, steps.c.id)).mappings():
            key = f"{step['run_id']}:{step['id']}"
            props = {"key": key, "step": step["id"], "lesson": step["lesson"]}
            props |= {k: step[k] for k in STEP_FIELDS if k != "step"}
            yield _merge("Step", "key", props)
            links.append(_link(("Run", "id", step["run_id"]), "HAS_STEP", ("Step", "key", key)))
            if step["parent_id"] is not None:
                parent = f"{step['run_id']}:{step['parent_id']}"
                links.append(_link(("Step", "key", parent), "PARENT_OF", ("Step", "key", key)))
    yield from links


def sync_falkordb(
    store: ProvenanceStore, url: str, graph: str = "dsassist", run_ids: list[str] | None = None
) -> int:
    """Push the lineage into a FalkorDB server (redis://host:port or falkor://host:port);
    returns the number of statements run. Idempotent: statements MERGE."""
    try:
        from falkordb import FalkorDB
    except ModuleNotFoundError:
        raise DSAssistError("syncing to FalkorDB needs its client: pip install 'dsassist[graph]'") from None
    where = urlparse(url)
    try:
        target = FalkorDB(
            host=where.hostname or "127.0.0.1", port=where.port or 6379, password=where.password
        )
        selected = target.select_graph(graph)
        count = 0
        for statement in cypher(store, run_ids):
            selected.query(statement.rstrip(";"))
            count += 1
    except Exception as exc:  # the client raises redis and its own errors: one line either way
        raise DSAssistError(
            f"FalkorDB at {where.hostname}:{where.port}: {str(exc).splitlines()[0]}"
        ) from None
    return count

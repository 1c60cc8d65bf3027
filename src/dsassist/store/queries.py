"""Lineage queries over a provenance store: what improved, how a result came about, what was
tried on a dataset, how two runs differ, and read-only SQL for everything else.

Every query is portable SQL (SQLite and PostgreSQL) over the migrated schema, and returns plain
rows (dicts) that the CLI prints as a table or as JSON.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, text

from dsassist.errors import DSAssistError
from dsassist.store import schema
from dsassist.store.provenance import ProvenanceStore, engine_for

Row = dict[str, Any]

# the words people use for a hypothesis family, and the step kinds that record it
KIND_ALIASES = {
    "feature_engineering": "feature",
    "features": "feature",
    "model_family": "model",
    "models": "model",
    "tune": "tuning",
    "bayesian": "explore",
}

LINEAGE = """
WITH RECURSIVE chain(run_id, id, parent_id, depth) AS (
    SELECT run_id, id, parent_id, 0 FROM steps WHERE run_id = :run AND id = :step
    UNION ALL
    SELECT s.run_id, s.id, s.parent_id, chain.depth + 1
    FROM steps s JOIN chain ON s.run_id = chain.run_id AND s.id = chain.parent_id
)
SELECT s.id AS step, s.parent_id AS parent, s.kind, s.template_id, s.hypothesis, s.verdict,
       s.score, s.gain,
       (SELECT e.code FROM executions e WHERE e.run_id = s.run_id AND e.step_id = s.id
        ORDER BY e.attempt DESC LIMIT 1) AS code
FROM chain JOIN steps s ON s.run_id = chain.run_id AND s.id = chain.id
ORDER BY chain.depth DESC
"""

SUMMARY = """
SELECT r.id AS run_id, r.status, d.path AS dataset, r.target, r.metric, r.best_score, r.best_step,
       (SELECT count(*) FROM steps s WHERE s.run_id = r.id) AS steps
FROM runs r JOIN datasets d ON d.run_id = r.id
WHERE r.id = :run
"""

BY_TEMPLATE = """
SELECT s.template_id, s.kind, count(*) AS tried,
       sum(CASE WHEN s.verdict = 'accepted' THEN 1 ELSE 0 END) AS kept,
       max(s.gain) AS best_gain
FROM steps s WHERE s.run_id = :run
GROUP BY s.template_id, s.kind
"""


class Lineage:
    """Questions to the record of one store (a run folder's, the project's or a team's)."""

    def __init__(self, store: ProvenanceStore) -> None:
        self.store = store

    def improved(
        self, metric: str, min_gain: float, kind: str | None = None, run: str | None = None, limit: int = 100
    ) -> list[Row]:
        """Kept steps whose gain over their parent, in `metric`, is at least `min_gain`."""
        s, r, d = schema.steps, schema.runs, schema.datasets
        query = (
            select(
                s.c.run_id,
                s.c.id.label("step"),
                s.c.kind,
                s.c.template_id,
                s.c.hypothesis,
                s.c.metric,
                s.c.score,
                s.c.gain,
                s.c.parent_id.label("parent"),
                d.c.path.label("dataset"),
                r.c.created_at,
            )
            .join(r, r.c.id == s.c.run_id)
            .join(d, d.c.run_id == s.c.run_id)
            .where(s.c.metric == metric, s.c.gain >= min_gain, s.c.verdict == "accepted")
            .order_by(s.c.gain.desc(), s.c.run_id, s.c.id)
            .limit(limit)
        )
        if kind:
            query = query.where(s.c.kind == KIND_ALIASES.get(kind, kind))
        if run:
            query = query.where(s.c.run_id == self.run_id(run))
        return self._select(query)

    def lineage(self, run: str, step: int) -> list[Row]:
        """The chain of steps from the first to `step`, each with its code and gain."""
        rows = self._rows(LINEAGE, {"run": self.run_id(run), "step": step})
        if not rows:
            raise DSAssistError(f"no step {step} in run {run}")
        return rows

    def history(self, dataset: str | None = None, since: str | None = None, limit: int = 100) -> list[Row]:
        """Runs, newest first, with their best score and what won; on one dataset (path,
        file name or sha256 prefix) and since an ISO date if given."""
        r, d, s = schema.runs, schema.datasets, schema.steps
        best = s.alias("best")
        n_steps = select(func.count()).where(s.c.run_id == r.c.id).scalar_subquery()
        query = (
            select(
                r.c.id.label("run_id"),
                r.c.created_at,
                r.c.status,
                d.c.path.label("dataset"),
                d.c.sha256,
                r.c.target,
                r.c.metric,
                r.c.best_score,
                best.c.template_id.label("winner"),
                best.c.hypothesis.label("winning_hypothesis"),
                n_steps.label("steps"),
            )
            .join(d, d.c.run_id == r.c.id)
            .outerjoin(best, and_(best.c.run_id == r.c.id, best.c.id == r.c.best_step))
            .order_by(r.c.created_at.desc())
            .limit(limit)
        )
        if dataset:
            query = query.where(
                or_(d.c.path == dataset, d.c.path.like(f"%/{dataset}"), d.c.sha256.like(f"{dataset}%"))
            )
        if since:
            query = query.where(r.c.created_at >= since)
        return self._select(query)

    def compare(self, run_a: str, run_b: str) -> list[Row]:
        """Per template: how often each run tried it, kept it, and its best gain there."""
        a, b = self.run_id(run_a), self.run_id(run_b)
        by_a = {r["template_id"]: r for r in self._rows(BY_TEMPLATE, {"run": a})}
        by_b = {r["template_id"]: r for r in self._rows(BY_TEMPLATE, {"run": b})}
        rows = []
        for template in sorted(by_a.keys() | by_b.keys()):
            ra, rb = by_a.get(template, {}), by_b.get(template, {})
            rows.append(
                {
                    "template_id": template,
                    "kind": ra.get("kind") or rb.get("kind"),
                    "a_tried": ra.get("tried", 0),
                    "a_kept": ra.get("kept", 0),
                    "a_best_gain": ra.get("best_gain"),
                    "b_tried": rb.get("tried", 0),
                    "b_kept": rb.get("kept", 0),
                    "b_best_gain": rb.get("best_gain"),
                }
            )
        return rows

    def summary(self, run: str) -> Row:
        """One run's headline: dataset, target, metric, best score, steps."""
        return self._rows(SUMMARY, {"run": self.run_id(run)})[0]

    def sql(self, query: str) -> list[Row]:
        """One query, on a connection that cannot write: SQLite allows only reads (an
        authorizer: no ATTACH, no VACUUM INTO, no PRAGMA); PostgreSQL runs it as one prepared
        statement (so no `COMMIT; ...`) in a read-only transaction."""
        engine = engine_for(self.store.location)
        try:
            with engine.connect() as c:
                raw = c.connection.driver_connection
                if engine.dialect.name == "sqlite":
                    raw.set_authorizer(_read_only)
                    cursor = raw.execute(query)
                else:
                    raw.rollback()
                    raw.read_only = True  # the next transaction: this query's
                    cursor = raw.cursor()
                    cursor.execute(query, prepare=True)
                names = [d[0] for d in cursor.description or []]
                rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()] if names else []
                raw.rollback()
                return rows
        except Exception as exc:  # the drivers' own errors: the query's fault, said in one line
            if not type(exc).__module__.startswith(("sqlite3", "psycopg", "sqlalchemy")):
                raise
            raise DSAssistError(f"query failed: {str(exc).strip().splitlines()[0]}") from None
        finally:
            engine.dispose()

    def run_id(self, prefix: str) -> str:
        """The run whose id starts with `prefix` (a unique prefix is enough)."""
        rows = self._rows("SELECT id FROM runs WHERE id LIKE :p LIMIT 2", {"p": f"{prefix}%"})
        if len(rows) != 1:
            raise DSAssistError(f"{'no' if not rows else 'more than one'} run matches {prefix!r}")
        return rows[0]["id"]

    def _select(self, query: Select) -> list[Row]:
        with self.store.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(query)]

    def _rows(self, query: str, params: dict[str, Any]) -> list[Row]:
        with self.store.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(text(query), params)]


_READS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}


def _read_only(action: int, *_: object) -> int:
    return sqlite3.SQLITE_OK if action in _READS else sqlite3.SQLITE_DENY

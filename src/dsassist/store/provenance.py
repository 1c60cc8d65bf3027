"""The provenance store: SQLite (a run folder's own, or the project's) or PostgreSQL (a team's),
one schema kept by Alembic migrations."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, case, create_engine, event, func, insert, select, text, update
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from dsassist.errors import DSAssistError
from dsassist.messages import Attempt, ErrorInfo, Execution, LLMCall, Metrics, Output, Prior, StepSummary
from dsassist.store import knowledge, schema

MIGRATIONS = Path(__file__).parent / "migrations"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database to a schema version, by default the newest; runs that open the same
    store at once take turns (a file lock next to SQLite, an advisory lock in PostgreSQL)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migration_lock(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(7227)"))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; no fsync per step
    cursor.execute("PRAGMA busy_timeout=30000")  # several runs may write one project store
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def engine_for(location: str | Path) -> Engine:
    """An engine for a SQLite file path or a database URL (sqlite:///..., postgresql://...)."""
    text = str(location)
    if "://" not in text:
        Path(text).parent.mkdir(parents=True, exist_ok=True)
        text = f"sqlite:///{text}"
    elif text.startswith(("postgresql://", "postgres://")):
        text = "postgresql+psycopg://" + text.split("://", 1)[1]  # psycopg 3, not psycopg2
    try:
        engine = create_engine(text)
        engine.url.port  # noqa: B018 (a port that is not a number fails here, not mid-run)
    except ModuleNotFoundError as exc:
        missing = (
            f"store {safe_location(text)}: its driver {exc.name} is missing (pip install 'psycopg[binary]')"
        )
        raise DSAssistError(missing) from None
    except (ArgumentError, ValueError) as exc:
        raise DSAssistError(f"store {safe_location(text)}: not a database URL ({exc})") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class ProvenanceStore:
    """Writes what the loop does, as it does it; reads it back for reports and queries."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self.engine = engine_for(location)
        try:
            migrate(self.engine)
        except (SQLAlchemyError, OSError) as exc:  # no server, not a database, no rights
            self.engine.dispose()
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise DSAssistError(f"store {safe_location(self.location)} cannot be opened: {reason}") from None

    def close(self) -> None:
        self.engine.dispose()

    def start_run(self, run_id: str, config: dict[str, Any], dataset: dict[str, Any]) -> None:
        with self.engine.begin() as c:
            c.execute(
                insert(schema.runs).values(
                    id=run_id,
                    created_at=now(),
                    status="running",
                    question=config.get("question", ""),
                    target=config["target"] or "",  # none: an open question
                    task=config["task"],
                    metric=config["metric"],
                    seed=config["seed"],
                    config=config,
                )
            )
            c.execute(insert(schema.datasets).values(run_id=run_id, **dataset))

    def record_step(self, run_id: str, step: StepSummary, attempts: list[Attempt], started_at: str) -> None:
        """The step, each attempt's execution, and a fix record linking each failure to its repair."""
        m = step.metrics
        with self.engine.begin() as c:
            # parameters apart from the statement: the statement's compiled form is cached
            c.execute(
                insert(schema.steps),
                {
                    "run_id": run_id,
                    "id": step.id,
                    "parent_id": step.parent,
                    "template_id": step.template_id,
                    "kind": step.kind,
                    "hypothesis": step.hypothesis,
                    "params": step.params,
                    "verdict": step.verdict.value,
                    "metric": m.metric if m else None,
                    "score": m.mean if m else None,
                    "std": m.std if m else None,
                    "gain": step.gain,
                    "metrics": m.model_dump() if m else None,
                    "error": step.error,
                    "attempts": len(attempts),
                    "started_at": started_at,
                    "duration_s": step.duration_s,
                },
            )
            previous: tuple[int, str] | None = None
            for i, attempt in enumerate(attempts):
                exe = attempt.execution
                execution_id = c.execute(
                    insert(schema.executions),
                    {
                        "run_id": run_id,
                        "step_id": step.id,
                        "attempt": i,
                        "code": attempt.code,
                        "ok": exe.ok,
                        "stdout": exe.stdout,
                        "stderr": exe.stderr,
                        "error_name": exe.error.name if exe.error else None,
                        "error_value": exe.error.value if exe.error else None,
                        "traceback": exe.error.traceback if exe.error else None,
                        "outputs": [o.model_dump(exclude_none=True) for o in exe.outputs],
                        "duration_s": exe.duration_s,
                    },
                ).inserted_primary_key[0]
                if previous is not None:
                    fix = {
                        "run_id": run_id,
                        "step_id": step.id,
                        "failed_execution_id": previous[0],
                        "fixed_execution_id": execution_id,
                        "rule": attempt.fix_rule,
                        "feedback": previous[1],
                    }
                    c.execute(insert(schema.fixes), fix)
                previous = (execution_id, attempt.feedback)
            if step.lesson:
                c.execute(insert(schema.lessons), {"run_id": run_id, "step_id": step.id, "text": step.lesson})

    def finish_run(
        self, run_id: str, status: str, best_step: int | None, best_score: float | None, answer: str
    ) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(schema.runs)
                .where(schema.runs.c.id == run_id)
                .values(
                    status=status,
                    finished_at=now(),
                    best_step=best_step,
                    best_score=best_score,
                    answer=answer,
                )
            )

    def record_knowledge(self, run_id: str, summary: dict[str, Any], priors: dict[str, Prior]) -> None:
        """The dataset's profile summary, and the priors the planner took from earlier runs."""
        known = {k: v.model_dump() for k, v in priors.items()}
        with self.engine.begin() as c:
            c.execute(
                update(schema.datasets).where(schema.datasets.c.run_id == run_id).values(profile=summary)
            )
            c.execute(update(schema.runs).where(schema.runs.c.id == run_id).values(priors=known))

    def record_artifacts(
        self, run_id: str, folder: Path, made: list[tuple[str, str, int | None]], keep: bool = False
    ) -> None:
        """Files of the run folder, as (kind, relative path, step id), by content hash. With
        `keep`, next to a SQLite store the content is also kept, once per hash, under
        artifacts/: a later run that overwrites its folder does not lose an earlier version."""
        rows = []
        for kind, relative, step_id in made:
            data = (folder / relative).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            rows.append(
                {
                    "run_id": run_id,
                    "step_id": step_id,
                    "kind": kind,
                    "path": relative,
                    "sha256": digest,
                    "size": len(data),
                    "created_at": now(),
                }
            )
            if keep:
                self._keep(digest, data)
        if rows:
            with self.engine.begin() as c:
                c.execute(insert(schema.artifacts), rows)

    def _keep(self, digest: str, data: bytes) -> None:
        if self.engine.dialect.name != "sqlite" or not self.engine.url.database:
            return  # a server's store records hashes; the files stay in the run folders
        blob = Path(self.engine.url.database).parent / "artifacts" / digest[:2] / digest
        if not blob.exists():
            blob.parent.mkdir(parents=True, exist_ok=True)
            tmp = blob.with_name(f".{digest}.{os.getpid()}.{uuid.uuid4().hex}")  # runs may race
            tmp.write_bytes(data)
            tmp.replace(blob)

    def has_run(self, run_id: str) -> bool:
        with self.engine.connect() as c:
            return c.execute(select(schema.runs.c.id).where(schema.runs.c.id == run_id)).first() is not None

    def only_run(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The run and dataset rows of a run folder's own database (it holds one run)."""
        with self.engine.connect() as c:
            run = c.execute(select(schema.runs)).mappings().one()
            dataset = (
                c.execute(select(schema.datasets).where(schema.datasets.c.run_id == run["id"]))
                .mappings()
                .one()
            )
        return dict(run), dict(dataset)

    def load_steps(self, run_id: str) -> list[tuple[StepSummary, Execution, str]]:
        """Every recorded step with its last execution and code, in order."""
        lessons = {r["step_id"]: r["text"] for r in self.rows("lessons", run_id)}
        last: dict[int, dict[str, Any]] = {}
        for row in self.rows("executions", run_id):
            last[row["step_id"]] = row  # rows come in insertion order: the last attempt wins
        loaded = []
        for row in sorted(self.rows("steps", run_id), key=lambda r: r["id"]):
            step = StepSummary(
                id=row["id"],
                parent=row["parent_id"],
                template_id=row["template_id"],
                kind=row["kind"],
                hypothesis=row["hypothesis"],
                params=row["params"],
                verdict=row["verdict"],
                metrics=Metrics.model_validate(row["metrics"]) if row["metrics"] else None,
                gain=row["gain"],
                duration_s=row["duration_s"],
                attempts=row["attempts"],
                error=row["error"],
                lesson=lessons.get(row["id"], ""),
            )
            loaded.append((step, _execution(last[row["id"]]), last[row["id"]]["code"]))
        return loaded

    def record_call(self, run_id: str, call: LLMCall) -> None:
        with self.engine.begin() as c:
            c.execute(insert(schema.llm_calls), {"run_id": run_id, **call.model_dump()})

    def spending(self, run_id: str) -> list[dict[str, Any]]:
        """Calls, tokens and cost per role and model, in route order of first use."""
        t = schema.llm_calls
        query = (
            select(
                t.c.role,
                t.c.model,
                func.count().label("calls"),
                func.sum(t.c.tokens_in).label("tokens_in"),
                func.sum(t.c.tokens_out).label("tokens_out"),
                func.sum(t.c.cost_usd).label("cost_usd"),
                func.sum(case((t.c.outcome == "ok", 0), else_=1)).label("failed"),
            )
            .where(t.c.run_id == run_id)
            .group_by(t.c.role, t.c.model)
            .order_by(func.min(t.c.id))
        )
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(query)]

    def rows(self, table: str, run_id: str) -> list[dict[str, Any]]:
        """All rows of one table for one run, in insertion order."""
        t = schema.metadata.tables[table]
        key = t.c.id if table == "runs" else t.c.run_id
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(select(t).where(key == run_id))]


def _execution(row: dict[str, Any]) -> Execution:
    error = None
    if row["error_name"]:
        error = ErrorInfo(
            name=row["error_name"], value=row["error_value"] or "", traceback=row["traceback"] or []
        )
    return Execution(
        ok=row["ok"],
        stdout=row["stdout"],
        stderr=row["stderr"],
        error=error,
        outputs=[Output.model_validate(o) for o in row["outputs"]],
        duration_s=row["duration_s"],
    )


def safe_location(location: str) -> str:
    """A URL without its password, for messages (a raw @ in the password included)."""
    return re.sub(r"(://[^:/@]+):.*@", r"\1:***@", location)


class MirroredStore:
    """A run's store: the run folder's own, mirrored into the project's (or a team's).

    Reads come from the run folder's copy. A mirror that fails mid-run (a dead server) is
    dropped with a warning: the run goes on, complete in its run folder.
    """

    def __init__(self, primary: ProvenanceStore, mirror: ProvenanceStore | None) -> None:
        self.primary, self.mirror = primary, mirror

    def start_run(self, run_id: str, config: dict[str, Any], dataset: dict[str, Any]) -> None:
        self._write("start_run", run_id, config, dataset)

    def record_step(self, run_id: str, step: StepSummary, attempts: list[Attempt], started_at: str) -> None:
        self._write("record_step", run_id, step, attempts, started_at)

    def record_call(self, run_id: str, call: LLMCall) -> None:
        self._write("record_call", run_id, call)

    def record_artifacts(self, run_id: str, folder: Path, made: list[tuple[str, str, int | None]]) -> None:
        """Hashes in both stores; the content kept by the project's (the run folder has the files)."""
        self.primary.record_artifacts(run_id, folder, made)
        self._write_mirror("record_artifacts", run_id, folder, made, True)

    def finish_run(
        self, run_id: str, status: str, best_step: int | None, best_score: float | None, answer: str
    ) -> None:
        self._write("finish_run", run_id, status, best_step, best_score, answer)

    def record_knowledge(self, run_id: str, summary: dict[str, Any], priors: dict[str, Prior]) -> None:
        self._write("record_knowledge", run_id, summary, priors)

    def priors(self, summary: dict[str, Any], run_id: str) -> dict[str, Prior]:
        """What the project's earlier runs on similar data teach (nothing without a project store,
        or when it fails: the run plans in the library's order)."""
        if self.mirror is None:
            return {}
        try:
            return knowledge.priors(self.mirror.engine, summary, run_id)
        except SQLAlchemyError as exc:
            self._drop_mirror(exc)
            return {}

    def spending(self, run_id: str) -> list[dict[str, Any]]:
        return self.primary.spending(run_id)

    def close(self) -> None:
        self.primary.close()
        if self.mirror is not None:
            self.mirror.close()

    def _write(self, method: str, *args: Any) -> None:
        getattr(self.primary, method)(*args)
        self._write_mirror(method, *args)

    def _write_mirror(self, method: str, *args: Any) -> None:
        if self.mirror is None:
            return
        try:
            getattr(self.mirror, method)(*args)
        except (SQLAlchemyError, OSError) as exc:
            self._drop_mirror(exc)

    def _drop_mirror(self, exc: Exception) -> None:
        assert self.mirror is not None
        warnings.warn(
            f"project store {safe_location(self.mirror.location)} failed ({type(exc).__name__}); "
            "the rest of this run is recorded in its run folder only",
            stacklevel=3,
        )
        self.mirror = None

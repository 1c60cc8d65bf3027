"""The provenance tables (SQLAlchemy Core). Change them only together with a migration."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("finished_at", String(32)),
    Column("status", String(16), nullable=False),  # running, finished, failed, interrupted
    Column("question", Text, nullable=False, default=""),
    Column("target", String(256), nullable=False),
    Column("task", String(16), nullable=False),
    Column("metric", String(32), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("config", JSON, nullable=False),
    Column("best_step", Integer),
    Column("best_score", Float),
    Column("answer", Text),
    Column("priors", JSON),  # template id -> how it fared on similar data before (migration 0004)
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False, index=True),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False, index=True),
    Column("n_rows", Integer, nullable=False),
    Column("n_cols", Integer, nullable=False),
    Column("format", String(16), nullable=False),
    Column("profile", JSON),  # task, rows, shares of column kinds and missing cells (migration 0004)
)

steps = Table(
    "steps",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("id", Integer, primary_key=True),
    Column("parent_id", Integer),
    Column("template_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("hypothesis", Text, nullable=False),
    Column("params", JSON, nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("metric", String(32)),
    Column("score", Float),
    Column("std", Float),
    Column("gain", Float),
    Column("metrics", JSON),
    Column("error", Text),
    Column("attempts", Integer, nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("duration_s", Float, nullable=False),
)

executions = Table(
    "executions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("step_id", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("code", Text, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("stdout", Text, nullable=False),
    Column("stderr", Text, nullable=False),
    Column("error_name", String(128)),
    Column("error_value", Text),
    Column("traceback", JSON),
    Column("outputs", JSON, nullable=False),
    Column("duration_s", Float, nullable=False),
    ForeignKeyConstraint(["run_id", "step_id"], ["steps.run_id", "steps.id"]),
)

fixes = Table(
    "fixes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("step_id", Integer, nullable=False),
    Column("failed_execution_id", Integer, ForeignKey("executions.id"), nullable=False),
    Column("fixed_execution_id", Integer, ForeignKey("executions.id"), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("feedback", Text, nullable=False),
)

lessons = Table(
    "lessons",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("step_id", Integer, nullable=False),
    Column("text", Text, nullable=False),
)

llm_calls = Table(
    "llm_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False, index=True),
    Column("step_id", Integer),
    Column("role", String(16), nullable=False),
    Column("model", String(128), nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("prompt_template", String(64), nullable=False),
    Column("prompt_version", Integer, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("response", Text, nullable=False),
    Column("tokens_in", Integer, nullable=False),
    Column("tokens_out", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("latency_s", Float, nullable=False),
    Column("retries", Integer, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("started_at", String(32), nullable=False),
)

# the lineage queries' access paths (migration 0003)
Index("ix_steps_metric_gain", steps.c.metric, steps.c.gain)
Index("ix_steps_run_metric_gain", steps.c.run_id, steps.c.metric, steps.c.gain)
Index("ix_executions_step", executions.c.run_id, executions.c.step_id)
Index("ix_lessons_step", lessons.c.run_id, lessons.c.step_id)
Index("ix_runs_created_at", runs.c.created_at)

artifacts = Table(  # migration 0005
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False, index=True),
    Column("step_id", Integer),  # the step that made it; none for the report and notebook
    Column("kind", String(16), nullable=False),  # model, plot, report, notebook
    Column("path", Text, nullable=False),  # relative to the run folder
    Column("sha256", String(64), nullable=False, index=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", String(32), nullable=False),
)

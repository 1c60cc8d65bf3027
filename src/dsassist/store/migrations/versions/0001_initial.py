"""The first schema: runs, datasets, steps, executions, fixes, lessons.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("best_step", sa.Integer),
        sa.Column("best_score", sa.Float),
        sa.Column("answer", sa.Text),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False, index=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("n_cols", sa.Integer, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
    )
    op.create_table(
        "steps",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer),
        sa.Column("template_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("hypothesis", sa.Text, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(32)),
        sa.Column("score", sa.Float),
        sa.Column("std", sa.Float),
        sa.Column("gain", sa.Float),
        sa.Column("metrics", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("step_id", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("stdout", sa.Text, nullable=False),
        sa.Column("stderr", sa.Text, nullable=False),
        sa.Column("error_name", sa.String(128)),
        sa.Column("error_value", sa.Text),
        sa.Column("traceback", sa.JSON),
        sa.Column("outputs", sa.JSON, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.ForeignKeyConstraint(["run_id", "step_id"], ["steps.run_id", "steps.id"]),
    )
    op.create_table(
        "fixes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("step_id", sa.Integer, nullable=False),
        sa.Column("failed_execution_id", sa.Integer, sa.ForeignKey("executions.id"), nullable=False),
        sa.Column("fixed_execution_id", sa.Integer, sa.ForeignKey("executions.id"), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("feedback", sa.Text, nullable=False),
    )
    op.create_table(
        "lessons",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("step_id", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("lessons", "fixes", "executions", "steps", "datasets", "runs"):
        op.drop_table(table)

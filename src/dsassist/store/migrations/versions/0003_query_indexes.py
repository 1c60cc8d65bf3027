"""Indexes for lineage queries across many runs: gains by metric (in all runs or one), a step's
executions, runs by time.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_steps_metric_gain", "steps", ["metric", "gain"])
    op.create_index("ix_steps_run_metric_gain", "steps", ["run_id", "metric", "gain"])
    op.create_index("ix_executions_step", "executions", ["run_id", "step_id"])
    op.create_index("ix_lessons_step", "lessons", ["run_id", "step_id"])
    op.create_index("ix_runs_created_at", "runs", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_created_at", "runs")
    op.drop_index("ix_lessons_step", "lessons")
    op.drop_index("ix_executions_step", "executions")
    op.drop_index("ix_steps_run_metric_gain", "steps")
    op.drop_index("ix_steps_metric_gain", "steps")

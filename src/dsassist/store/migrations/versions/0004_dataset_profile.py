"""A dataset's profile summary (task, rows, column kinds, missingness), to find similar data,
and the priors a run's planner took from earlier runs on similar data.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("profile", sa.JSON))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("priors", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("priors")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("profile")

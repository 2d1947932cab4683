"""A durable record of every scheduler lease: the floor for new epochs.

Epochs that only dispatched leave no trace in ``task_logs``; without this table a new lease
after Redis lost its counter could reuse such an epoch.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "leader_history",
        sa.Column("epoch", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("acquired_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leader_history")

"""Index task_logs.epoch: a new leader reads MAX(epoch) to keep epochs rising after the
coordination backend lost its counter.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("ix_task_logs_epoch", "task_logs", ["epoch"])


def downgrade() -> None:
    op.drop_index("ix_task_logs_epoch", "task_logs")

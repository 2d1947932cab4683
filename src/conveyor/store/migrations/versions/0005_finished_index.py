"""Index task.finished_at for the stats endpoint's "finished in the last minutes" rates.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_index("ix_task_finished", "task", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_task_finished", "task")

"""Indexes for the retention purger (``store/retention.py``).

``ix_task_status_finished`` (status, finished_at): the purger looks for one final status
finished before a cutoff; on ``finished_at`` alone it would step over every kept row of the
other statuses (30 days of FAILED rows while it looks for SUCCESS rows older than 7 days) on
every pass. ``ix_task_logs_at`` (at): old log rows of tasks that are kept.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_index("ix_task_status_finished", "task", ["status", "finished_at"])
    op.create_index("ix_task_logs_at", "task_logs", ["at"])


def downgrade() -> None:
    op.drop_index("ix_task_logs_at", "task_logs")
    op.drop_index("ix_task_status_finished", "task")

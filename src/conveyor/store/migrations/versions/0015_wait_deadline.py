"""The wait deadline of a WAITING task (``wait_timeout_seconds``) and the worker a broadcast
copy is pinned to (docs/design.md §10).

``task.wait_deadline``: when a task created with ``wait_timeout_seconds`` stops waiting for its
parents and is cancelled (NULL: it waits as long as they take). ``ix_task_status_wait_deadline``
(status, wait_deadline): the leader's wait sweep reads the WAITING tasks past their deadline
as one range of it, whatever the size of the table. ``task.pinned_worker``: the only worker a
broadcast copy may run on (NULL: any); ``ix_task_status_pinned_worker`` finds the waiting
copies (PENDING, pinned) as one range, and the pin sweep cancels those of a worker that is gone.

Revision ID: 0015
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"


def upgrade() -> None:
    op.add_column("task", sa.Column("wait_deadline", sa.Double))
    op.create_index("ix_task_status_wait_deadline", "task", ["status", "wait_deadline"])
    op.add_column("task", sa.Column("pinned_worker", sa.String(128)))
    op.create_index("ix_task_status_pinned_worker", "task", ["status", "pinned_worker"])


def downgrade() -> None:
    op.drop_index("ix_task_status_pinned_worker", "task")
    op.drop_column("task", "pinned_worker")
    op.drop_index("ix_task_status_wait_deadline", "task")
    op.drop_column("task", "wait_deadline")

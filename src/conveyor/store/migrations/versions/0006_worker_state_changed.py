"""When each worker's recorded state last changed (alive → stopped or dead, and back).

Rows recorded before this revision keep NULL until their state next changes: the time of their
last change was never written down.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.add_column("worker_registry", sa.Column("state_changed_at", sa.Double))


def downgrade() -> None:
    op.drop_column("worker_registry", "state_changed_at")

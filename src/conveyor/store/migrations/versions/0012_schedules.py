"""Schedules and their fire history (docs/design.md §9).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0012"
down_revision = "0011"

_LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("task_type", sa.String(128), nullable=False),
        sa.Column("payload", _LONG_TEXT, nullable=False),
        sa.Column("priority", sa.SmallInteger),
        sa.Column("timeout", sa.Double),
        sa.Column("max_retries", sa.Integer),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("cron", sa.String(255)),
        sa.Column("every_seconds", sa.BigInteger),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("start_at", sa.Double),
        sa.Column("end_at", sa.Double),
        sa.Column("overlap", sa.String(16), nullable=False),
        sa.Column("catchup_window", sa.Double, nullable=False),
        sa.Column("jitter", sa.Double, nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("next_fire_at", sa.Double),
        sa.Column("last_fire_at", sa.Double),
        sa.Column("last_task_id", sa.String(26)),
        sa.Column("buffered", sa.Integer, nullable=False),
        sa.Column("missed", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_schedules_next_fire", "schedules", ["next_fire_at"])
    op.create_index("ix_schedules_buffered", "schedules", ["buffered"])
    op.create_table(
        "schedule_fires",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("fire_at", sa.Double, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("task_id", sa.String(26)),
        sa.Column("recorded_at", sa.Double, nullable=False),
        sa.Column("epoch", sa.BigInteger),
        sa.Column("note", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("schedule_fires")
    op.drop_index("ix_schedules_buffered", table_name="schedules")
    op.drop_index("ix_schedules_next_fire", table_name="schedules")
    op.drop_table("schedules")

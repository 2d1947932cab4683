"""The four tables of docs/design.md §2: task, task_logs, task_config, worker_registry.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None

_long_text = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "task",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("task_type", sa.String(128), nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload", _long_text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("result", _long_text),
        sa.Column("error", sa.Text),
        sa.Column("retry_count", sa.Integer, nullable=False),
        sa.Column("max_retries", sa.Integer, nullable=False),
        sa.Column("timeout", sa.Double, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("worker_id", sa.String(128)),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("callback_url", sa.String(2048)),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("run_at", sa.Double, nullable=False),
        sa.Column("started_at", sa.Double),
        sa.Column("finished_at", sa.Double),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.UniqueConstraint("task_type", "idempotency_key", name="uq_task_idempotency"),
    )
    op.create_index("ix_task_status_run_at", "task", ["status", "run_at"])
    op.create_index("ix_task_type_created", "task", ["task_type", "created_at"])
    op.create_index("ix_task_created", "task", ["created_at"])
    op.create_index("ix_task_worker_status", "task", ["worker_id", "status"])
    op.create_table(
        "task_logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("task_id", sa.String(26), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("worker_id", sa.String(128)),
        sa.Column("epoch", sa.BigInteger),
    )
    op.create_index("ix_task_logs_task", "task_logs", ["task_id", "id"])
    op.create_table(
        "task_config",
        sa.Column("task_type", sa.String(128), primary_key=True),
        sa.Column("executor", sa.String(64), nullable=False),
        sa.Column("executor_config", sa.Text, nullable=False),
        sa.Column("timeout", sa.Double),
        sa.Column("max_retries", sa.Integer),
        sa.Column("priority", sa.SmallInteger),
        sa.Column("backoff", sa.Text),
        sa.Column("concurrency_limit", sa.Integer),
        sa.Column("rate_limit", sa.Double),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "worker_registry",
        sa.Column("worker_id", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("types", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("last_heartbeat", sa.Double, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    for name in ("worker_registry", "task_config", "task_logs", "task"):
        op.drop_table(name)

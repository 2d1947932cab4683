"""The SQL tables (SQLAlchemy Core), the source of truth for every task.

Times are stored as DOUBLE seconds since the epoch: one representation that SQLite, MariaDB and
PostgreSQL all keep exactly, so a value read back compares equal to the value written. JSON
documents are stored as text serialised by us (orjson), so the three databases hold the same
bytes and payload size limits are ours, not the driver's.

Idempotency keys are unique through ``idempotency_hash``, the SHA-256 of the type and the key in
hex (``rows.key_hash``): MariaDB's default collation calls ``Key``, ``key`` and ``key `` equal,
and a hash compares byte for byte on every database, whatever its collation (migration 0007).

Every task, task config and API key carries its ``tenant`` (migration 0008). Every query the
API makes for a tenant-bound key filters by it, and each such query has an index that starts
with ``tenant``: the newest-first list (by id, alone or with a status or type), the creation
and completion windows of the stats, and the counts by type and status.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from conveyor.tenants import DEFAULT_TENANT

metadata = sa.MetaData()

# MySQL's TEXT holds 64 KiB; payloads and results may be larger.
LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The tenant-first indexes of ``task`` (migration 0008 creates the same ones).
TASK_TENANT_INDEXES: dict[str, tuple[str, ...]] = {
    "ix_task_tenant_id": ("tenant", "id"),
    "ix_task_tenant_status_id": ("tenant", "status", "id"),
    "ix_task_tenant_type_id": ("tenant", "task_type", "id"),
    "ix_task_tenant_type_status": ("tenant", "task_type", "status"),
    "ix_task_tenant_created": ("tenant", "created_at"),
    "ix_task_tenant_finished": ("tenant", "finished_at"),
}

task = sa.Table(
    "task",
    metadata,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("task_type", sa.String(128), nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("payload", LongText, nullable=False),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Column("result", LongText),
    sa.Column("error", sa.Text),
    sa.Column("retry_count", sa.Integer, nullable=False, default=0),
    sa.Column("max_retries", sa.Integer, nullable=False),
    sa.Column("timeout", sa.Double, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, default=0),
    sa.Column("worker_id", sa.String(128)),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("idempotency_hash", sa.String(64)),
    sa.Column("callback_url", sa.String(2048)),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("run_at", sa.Double, nullable=False),
    sa.Column("started_at", sa.Double),
    sa.Column("finished_at", sa.Double),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, default=0),
    sa.Column("owner", sa.String(32)),
    sa.Column("tenant", sa.String(64), nullable=False, server_default=DEFAULT_TENANT),
    sa.Column("wait_deadline", sa.Double),  # wait_timeout_seconds of a WAITING task (0015)
    sa.Column("pinned_worker", sa.String(128)),  # a broadcast copy's worker (0015)
    sa.Index("ix_task_status_run_at", "status", "run_at"),
    sa.Index("ix_task_type_created", "task_type", "created_at"),
    sa.Index("ix_task_created", "created_at"),
    sa.Index("ix_task_worker_status", "worker_id", "status"),
    sa.Index("ix_task_finished", "finished_at"),
    *(sa.Index(name, *columns) for name, columns in TASK_TENANT_INDEXES.items()),
    sa.UniqueConstraint(
        "tenant", "task_type", "idempotency_hash", name="uq_task_tenant_idempotency"
    ),
    sa.Index("ix_task_status_finished", "status", "finished_at"),  # retention (0011)
    sa.Index("ix_task_status_wait_deadline", "status", "wait_deadline"),  # wait sweep (0015)
    sa.Index("ix_task_status_pinned_worker", "status", "pinned_worker"),  # pin sweep (0015)
)

task_logs = sa.Table(
    "task_logs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.String(26), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("worker_id", sa.String(128)),
    sa.Column("epoch", sa.BigInteger),
    sa.Index("ix_task_logs_task", "task_id", "id"),
    sa.Index("ix_task_logs_epoch", "epoch"),
    sa.Index("ix_task_logs_at", "at"),  # retention (0011)
)

task_config = sa.Table(
    "task_config",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True, server_default=DEFAULT_TENANT),
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

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("revoked_at", sa.Double),
    sa.Column("tenant", sa.String(64), nullable=False, server_default=DEFAULT_TENANT),
    sa.Index("ix_api_keys_tenant", "tenant", "created_at"),
)

leader_history = sa.Table(
    "leader_history",
    metadata,
    sa.Column("epoch", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("acquired_at", sa.Double, nullable=False),
)

worker_registry = sa.Table(
    "worker_registry",
    metadata,
    sa.Column("worker_id", sa.String(128), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("types", sa.Text, nullable=False),
    sa.Column("first_seen", sa.Double, nullable=False),
    sa.Column("last_heartbeat", sa.Double, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("state_changed_at", sa.Double),  # NULL: recorded before revision 0006
)

# One row per operator action, written in the transaction of the action (``store.audit``).
# ``(tenant, id)`` serves the newest-first list of a tenant, ``(tenant, target_id, id)`` the
# history of one target, ``(at)`` the retention purge.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(32)),  # NULL: authentication off, or the CLI
    sa.Column("client", sa.String(64)),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target_kind", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(255), nullable=False),
    sa.Column("before_json", sa.Text),
    sa.Column("after_json", sa.Text),
    sa.Column("detail", sa.String(255)),
    sa.Index("ix_audit_tenant_id", "tenant", "id"),
    sa.Index("ix_audit_tenant_target", "tenant", "target_id", "id"),
    sa.Index("ix_audit_at", "at"),
)

# Schedules (docs/design.md §9): names are unique per tenant. ``next_fire_at`` is NULL while a
# schedule is paused or has no fire left, and its index is how a leader finds the next due
# schedule without a scan; ``buffered`` counts fires waiting for a running task.
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("task_type", sa.String(128), nullable=False),
    sa.Column("payload", LongText, nullable=False),
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
    sa.Index("ix_schedules_next_fire", "next_fire_at"),
    sa.Index("ix_schedules_buffered", "buffered"),
)

# One row per fire: the primary key is what makes a fire happen once whoever records it.
schedule_fires = sa.Table(
    "schedule_fires",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("fire_at", sa.Double, primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("task_id", sa.String(26)),
    sa.Column("recorded_at", sa.Double, nullable=False),
    sa.Column("epoch", sa.BigInteger),
    sa.Column("note", sa.Text),
    sa.Index("ix_schedule_fires_outcome_recorded", "outcome", "recorded_at"),  # retention (0014)
)

# Per-tenant dispatch weight and quotas (docs/design.md §11); a tenant without a row has
# weight 1 and no quota.
tenant_limits = sa.Table(
    "tenant_limits",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("weight", sa.Integer, nullable=False, server_default="1"),
    sa.Column("max_pending", sa.BigInteger),  # NULL: unlimited
    sa.Column("creates_per_second", sa.Double),  # NULL: unlimited
    sa.Column("updated_at", sa.Double, nullable=False),
)

# Dependencies (docs/design.md §10): one row per (child, parent) edge. The primary key serves
# "parents of this child" (a release reads every parent's status); ``ix_task_deps_parent``
# serves "children of these parents" (a parent's final move finds whom to release).
# ``position`` keeps the parents in the order given (a fan-in gets their results in that
# order); ``policy`` is the child's ``on_parent_failure`` (``cancel`` or ``run``), copied on
# each of its edges so a release reads one table; ``input`` names the payload key that gets
# this parent's result (``inputs``), with ``path`` the dotted path into that result.
task_deps = sa.Table(
    "task_deps",
    metadata,
    sa.Column("child_id", sa.String(26), primary_key=True),
    sa.Column("parent_id", sa.String(26), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("policy", sa.String(8), nullable=False),
    sa.Column("inputs", sa.Text),  # JSON: [[payload key, dotted path or null, fan-in], ...]
    sa.Index("ix_task_deps_parent", "parent_id", "child_id"),
)

# A workflow groups the tasks of one DAG (``POST /api/v1/workflows``); ``workflow_nodes`` names
# each task by its node. Its state is derived from its tasks', never stored, so it cannot
# disagree with them. ``ix_workflow_nodes_task`` gives a task's workflow.
workflows = sa.Table(
    "workflows",
    metadata,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("owner", sa.String(32)),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("nodes", sa.Integer, nullable=False),
    sa.Index("ix_workflows_tenant_id", "tenant", "id"),
    sa.Index("ix_workflows_created", "created_at"),
)

workflow_nodes = sa.Table(
    "workflow_nodes",
    metadata,
    sa.Column("workflow_id", sa.String(26), primary_key=True),
    sa.Column("node", sa.String(128), primary_key=True),
    sa.Column("task_id", sa.String(26), nullable=False),
    sa.Index("ix_workflow_nodes_task", "task_id"),
)

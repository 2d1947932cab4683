"""Per-type defaults (``task_config``): read through the catalog's cache, written by admins.

Keyed by (tenant, task type): tenant A's config of type ``x`` is invisible to tenant B, which
may have its own."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from conveyor.audit import AuditEntry, config_view
from conveyor.models import Backoff, Priority, TaskConfig
from conveyor.store.audit import delete_recorded, upsert_recorded
from conveyor.store.database import Database
from conveyor.store.rows import dumps, in_tenant, loads
from conveyor.store.schema import task_config
from conveyor.tenants import DEFAULT_TENANT


class SqlConfigs:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_config(
        self, task_type: str, tenant: str = DEFAULT_TENANT
    ) -> TaskConfig | None:
        query = sa.select(task_config).where(
            task_config.c.tenant == tenant, task_config.c.task_type == task_type
        )
        row = await self._db.first(query)
        return None if row is None else _config_from_row(row)

    async def list_configs(self, tenant: str | None = None) -> list[TaskConfig]:
        query = sa.select(task_config).order_by(task_config.c.tenant, task_config.c.task_type)
        return [
            _config_from_row(r)
            for r in await self._db.rows(in_tenant(query, tenant, task_config))
        ]

    async def put_config(
        self, config: TaskConfig, *, audit: AuditEntry | None = None
    ) -> TaskConfig:
        row = {
            "executor": config.executor,
            "executor_config": dumps(config.executor_config),
            "timeout": config.timeout,
            "max_retries": config.max_retries,
            "priority": None if config.priority is None else int(config.priority),
            "backoff": None if config.backoff is None else dumps(
                {"base": config.backoff.base, "factor": config.backoff.factor,
                 "cap": config.backoff.cap, "jitter": config.backoff.jitter}),
            "concurrency_limit": config.concurrency_limit,
            "rate_limit": config.rate_limit,
            "enabled": config.enabled,
            "updated_at": config.updated_at,
        }
        await upsert_recorded(
            self._db, task_config, {"tenant": config.tenant, "task_type": config.task_type}, row,
            audit, config.updated_at, _view, config_view(config), config.tenant,
        )
        return config

    async def delete_config(
        self, task_type: str, tenant: str = DEFAULT_TENANT, *, audit: AuditEntry | None = None
    ) -> bool:
        return await delete_recorded(
            self._db, task_config, {"tenant": tenant, "task_type": task_type}, audit, _view,
            tenant,
        )


def _view(row: sa.RowMapping | None) -> dict[str, object] | None:
    return config_view(None if row is None else _config_from_row(row))


def _config_from_row(row: sa.RowMapping) -> TaskConfig:
    backoff = loads(row["backoff"])
    return TaskConfig(
        task_type=row["task_type"],
        executor=row["executor"],
        executor_config=orjson.loads(row["executor_config"]),
        timeout=row["timeout"],
        max_retries=row["max_retries"],
        priority=None if row["priority"] is None else Priority(row["priority"]),
        backoff=None if backoff is None else Backoff(**backoff),
        concurrency_limit=row["concurrency_limit"],
        rate_limit=row["rate_limit"],
        enabled=bool(row["enabled"]),
        updated_at=row["updated_at"],
        tenant=row["tenant"],
    )

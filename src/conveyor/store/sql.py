"""``SqlStore``: the store contract on SQLAlchemy Core, one code path for SQLite, MariaDB/MySQL
and PostgreSQL.

A thin composition: it owns the engine and the event bus and hands both to one object per
part of the contract (``store.tasks``, ``store.moves``, ...), each in its own module with the
queries of its tables. Callers name the part they use, so what a component
depends on shows in the call (``store.moves.finish``) and a component that needs one part can
take just that part.
"""

from __future__ import annotations

import sqlalchemy as sa

from conveyor.events import EventBus
from conveyor.store.apikeys import SqlApiKeys
from conveyor.store.audit import SqlAudit
from conveyor.store.configs import SqlConfigs
from conveyor.store.database import Database
from conveyor.store.deps import SqlDeps
from conveyor.store.epochs import SqlEpochs
from conveyor.store.glance import SqlGlance
from conveyor.store.moves import MAX_RESULT_BYTES, SqlMoves
from conveyor.store.retention import SqlPurges
from conveyor.store.schedules import SqlSchedules
from conveyor.store.stats import SqlStats
from conveyor.store.sweeps import SqlSweeps
from conveyor.store.tasks import SqlTasks
from conveyor.store.tenant_limits import SqlTenantLimits
from conveyor.store.urls import database_url
from conveyor.store.workers import SqlWorkers
from conveyor.store.workflows import SqlWorkflows


class SqlStore:
    """The durable record; see ``store.protocol.TaskStore`` for the contract."""

    def __init__(
        self, url: str, events: EventBus | None = None, echo: bool = False,
        max_result_bytes: int = MAX_RESULT_BYTES,
    ) -> None:
        self.url = database_url(url)
        self.events = events or EventBus()
        self.db = Database(self.url, echo)
        self.tasks = SqlTasks(self.db, self.events)
        self.moves = SqlMoves(self.db, self.events, max_result_bytes)
        self.sweeps = SqlSweeps(self.db)
        self.stats = SqlStats(self.db)
        self.glance = SqlGlance(self.db)
        self.retention = SqlPurges(self.db)
        self.configs = SqlConfigs(self.db)
        self.keys = SqlApiKeys(self.db)
        self.workers = SqlWorkers(self.db)
        self.epochs = SqlEpochs(self.db)
        self.audit = SqlAudit(self.db)
        self.schedules = SqlSchedules(self.db, self.events)
        self.tenant_limits = SqlTenantLimits(self.db)
        self.deps = SqlDeps(self.db)
        self.workflows = SqlWorkflows(self.db, self.events)

    async def migrate(self) -> None:
        await self.db.migrate()

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        async with self.db.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

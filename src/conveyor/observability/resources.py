"""Gauges of what a process holds: its database pool and its Redis connections (CPU, memory and
open files come from prometheus-client's process collector, registered by ``Metrics``).

Read at scrape time from the pools themselves, never pushed. SQLAlchemy's queue pools answer
``size()``, ``checkedout()``, ``checkedin()`` and ``overflow()``; redis-py's pool keeps its
connection lists in attributes it does not document, so they are read defensively and a pool
of another shape (etcd, in-process coordination) reports nothing rather than failing a scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.coordination.protocol import Coordination

UNLIMITED = 2**31  # redis-py's "no max_connections" default


def redis_pool(coordination: Coordination) -> Any | None:
    """The connection pool behind a Redis coordination backend; None for other backends."""
    client = getattr(getattr(coordination.closer, "backend", None), "client", None)
    return getattr(client, "connection_pool", None)


class PoolCollector(Collector):
    """``conveyor_db_pool_*`` and ``conveyor_redis_connections`` of one process."""

    def __init__(self, engine: AsyncEngine, redis: Any | None = None) -> None:
        self._engine = engine
        self._redis = redis

    def collect(self) -> Iterator[Metric]:
        yield from self._database()
        yield from self._redis_pool()

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def _database(self) -> Iterator[Metric]:
        pool = self._engine.sync_engine.pool
        reads = {
            "size": ("Connections the database pool keeps open (its pool_size).", "size"),
            "checked_out": ("Database connections in use now.", "checkedout"),
            "checked_in": ("Open database connections idle in the pool.", "checkedin"),
            "overflow": ("Database connections open beyond pool_size (up to max_overflow); "
                         "steadily above 0 means the pool is too small.", "overflow"),
        }
        for name, (documentation, method) in reads.items():
            read = getattr(pool, method, None)
            if read is None:
                continue
            family = GaugeMetricFamily(f"conveyor_db_pool_{name}", documentation)
            # A queue pool counts overflow from -pool_size up: below 0 is "none yet".
            family.add_metric([], max(0, int(read())))
            yield family

    def _redis_pool(self) -> Iterator[Metric]:
        pool = self._redis
        if pool is None:
            return
        in_use = getattr(pool, "_in_use_connections", None)
        idle = getattr(pool, "_available_connections", None)
        if in_use is None or idle is None:
            return
        family = GaugeMetricFamily(
            "conveyor_redis_connections", "Redis connections of this process, by state.",
            labels=["state"],
        )
        family.add_metric(["in_use"], len(in_use))
        family.add_metric(["idle"], len(idle))
        yield family
        limit = getattr(pool, "max_connections", None)
        if isinstance(limit, int) and limit < UNLIMITED:
            cap = GaugeMetricFamily("conveyor_redis_max_connections",
                                    "The most Redis connections this process may open.")
            cap.add_metric([], limit)
            yield cap

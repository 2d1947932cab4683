"""What applies to a task type: its ``task_config`` row, else its registration, else settings.

A type no config or registration here knows is still known when a worker announced it (the
``types`` of ``worker_registry``, kept durably): an API started without ``--app`` then accepts
the user's types its workers run, with the defaults from settings.

The API reads it for the defaults of a new task, the worker for the executor and backoff of a
finished attempt. Configs belong to a tenant, so a spec is asked for as (type, tenant): a task
runs with its own tenant's config; registrations and announced types are the fleet's, shared.
Rows are cached for a few seconds so the hot path does not read ``task_config`` once per task;
a PUT through this process invalidates at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.config import TaskDefaults
from conveyor.models import Backoff, Priority, TaskConfig
from conveyor.registrations import Registration
from conveyor.store.protocol import TaskConfigs, WorkerRecords
from conveyor.tenants import DEFAULT_TENANT


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """The effective settings of one task type."""

    task_type: str
    executor: str
    executor_config: Mapping[str, Any]
    timeout: float
    max_retries: int
    priority: Priority
    backoff: Backoff
    enabled: bool = True
    concurrency_limit: int | None = None
    rate_limit: float | None = None
    config: TaskConfig | None = field(default=None, compare=False)


def resolve(
    task_type: str,
    config: TaskConfig | None,
    registration: Registration | None,
    defaults: TaskDefaults,
    announced: bool = False,
) -> TypeSpec | None:
    """Pure merge of the three layers; ``None`` when nothing knows the type (no config, no
    registration, and no worker announced it)."""
    if config is None and registration is None and not announced:
        return None

    def pick(name: str, fallback: Any) -> Any:
        for layer in (config, registration):
            value = getattr(layer, name, None) if layer is not None else None
            if value is not None:
                return value
        return fallback

    return TypeSpec(
        task_type=task_type,
        executor=config.executor if config is not None else "python",
        executor_config=config.executor_config if config is not None else {},
        timeout=float(pick("timeout", defaults.timeout)),
        max_retries=int(pick("max_retries", defaults.max_retries)),
        priority=pick("priority", Priority.NORMAL),
        backoff=pick("backoff", defaults.backoff),
        enabled=config.enabled if config is not None else True,
        concurrency_limit=config.concurrency_limit if config is not None else None,
        rate_limit=config.rate_limit if config is not None else None,
        config=config,
    )


class Catalog:
    def __init__(
        self,
        configs: TaskConfigs,
        registrations: Mapping[str, Registration],
        defaults: TaskDefaults,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        workers: WorkerRecords | None = None,
    ) -> None:
        self._configs = configs
        self.registrations = registrations
        self._defaults = defaults
        self._ttl = ttl
        self._clock = clock
        self._workers = workers
        self._announced: tuple[float, frozenset[str]] = (float("-inf"), frozenset())
        # A future per (tenant, type), so a burst of tasks of one type waits on a single read.
        self._cache: dict[tuple[str, str], tuple[float, asyncio.Future[TaskConfig | None]]] = {}

    async def spec(self, task_type: str, tenant: str = DEFAULT_TENANT) -> TypeSpec | None:
        config = await self._config(task_type, tenant)
        registration = self.registrations.get(task_type)
        announced = config is None and registration is None and await self._is_announced(task_type)
        return resolve(task_type, config, registration, self._defaults, announced)

    async def _is_announced(self, task_type: str) -> bool:
        """Whether a recorded worker runs the type, and no tenant configured it: a worker
        announces every tenant's configured types, and one tenant must not learn of, nor
        submit to, another's. The records are read at most every ``ttl`` seconds, and only
        for a type nothing else knows, so a burst of unknown types costs one read; a newly
        started worker's types are accepted within ``ttl``."""
        if self._workers is None:
            return False
        at, types = self._announced
        if at + self._ttl <= self._clock():
            records = await self._workers.list_worker_records()
            configured = {c.task_type for c in await self._configs.list_configs()}
            types = frozenset(t for r in records for t in r.types) - configured
            self._announced = (self._clock(), types)
        return task_type in types

    async def _config(self, task_type: str, tenant: str) -> TaskConfig | None:
        now = self._clock()
        key = (tenant, task_type)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            if cached[1].done():  # the hot path: no shield (a future and a callback) a task
                return cached[1].result()
            return await asyncio.shield(cached[1])
        future = asyncio.ensure_future(self._configs.get_config(task_type, tenant))
        self._cache[key] = (now + self._ttl, future)
        try:
            return await asyncio.shield(future)
        except BaseException:
            if self._cache.get(key, (0.0, None))[1] is future:
                del self._cache[key]  # a failed read must not be cached
            raise

    def invalidate(self, task_type: str, tenant: str = DEFAULT_TENANT) -> None:
        self._cache.pop((tenant, task_type), None)

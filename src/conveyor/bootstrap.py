"""The one place that names concrete classes: settings in, wired components out.

Everything else receives its collaborators; nothing reads settings or builds backends on its
own, so tests assemble exactly the pieces they need.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from conveyor import builtin
from conveyor.catalog import Catalog
from conveyor.config import Settings
from conveyor.coordination.local import LocalCoordination
from conveyor.coordination.protocol import Coordination
from conveyor.errors import ConfigError
from conveyor.events import EventBus, Listener
from conveyor.executors.deferred import Deferred
from conveyor.executors.protocol import Executor
from conveyor.executors.python import PythonExecutor
from conveyor.executors.registry import ExecutorRegistry
from conveyor.executors.unsealing import Unsealing
from conveyor.keyring import Keyring
from conveyor.observability.metrics import Metrics, MetricsListener
from conveyor.observability.resources import PoolCollector, redis_pool
from conveyor.observability.task_spans import MoveSpans
from conveyor.outcomes import Outcomes
from conveyor.plugins import EXECUTORS, LISTENERS, LOAD_BALANCERS, load_entry_points
from conveyor.registrations import Conveyor, Registration, load_app
from conveyor.schedules.model import Schedule
from conveyor.service import TaskService
from conveyor.store.sql import SqlStore
from conveyor.webhooks import WebhookListener

if TYPE_CHECKING:  # imported where built: a worker needs no scheduler, a scheduler no worker
    from conveyor.balancing import Balancer
    from conveyor.scheduler import Scheduler
    from conveyor.worker import Worker


def process_id(role: str) -> str:
    """Readable and unique: host, pid and a random suffix (pids repeat across restarts)."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def application(settings: Settings, extra: Conveyor | None = None) -> Conveyor:
    """The built-in task types plus those of ``settings.app`` (and ``extra``, for tests),
    with the schedules they declare."""
    merged = Conveyor()
    for app in (extra, load_app(settings.app) if settings.app else None, builtin.app):
        if app is not None:
            merged.include(app)
    return merged


def registrations(settings: Settings, extra: Conveyor | None = None) -> dict[str, Registration]:
    return application(settings, extra).registrations


def executors(
    settings: Settings, regs: dict[str, Registration], keyring: Keyring | None = None
) -> ExecutorRegistry:
    """Every executor this worker has, each opening the sealed secrets of its configs."""
    w = settings.worker
    found: dict[str, Executor] = {
        "python": PythonExecutor(
            regs, w.thread_pool_size, processes=w.task_processes,
            modules=w.python_modules,
        ),
        "http": Deferred(lambda: _http_executor(settings)),
        "grpc": Deferred(lambda: _grpc_executor(settings)),
    }
    for name, factory in load_entry_points(EXECUTORS).items():
        if name not in found:  # built-ins win; a plug-in cannot replace them by accident
            found[name] = cast(Callable[[Settings], Executor], factory)(settings)
    keys = keyring or Keyring.from_settings(settings)
    return ExecutorRegistry({name: Unsealing(name, e, keys) for name, e in found.items()})


def _http_executor(settings: Settings) -> Executor:
    from conveyor.executors.http import HttpExecutor

    return HttpExecutor(settings)


def _grpc_executor(settings: Settings) -> Executor:
    from conveyor.executors.grpc import GrpcExecutor

    return GrpcExecutor(settings)


def balancer(settings: Settings) -> Balancer:
    from conveyor.balancing import make_balancer

    plugins = cast("dict[str, Callable[[], Balancer]]", load_entry_points(LOAD_BALANCERS))
    return make_balancer(settings.scheduler.load_balance_strategy, plugins)


def listeners(settings: Settings) -> list[Listener]:
    built: list[Listener] = [WebhookListener(settings)]
    for factory in load_entry_points(LISTENERS).values():
        built.append(cast(Callable[[Settings], Listener], factory)(settings))
    return built


async def coordination(settings: Settings, *, standalone: bool) -> Coordination:
    url = settings.coordination_url or settings.redis_url
    if url and url.startswith(("etcd://", "etcds://")):
        from conveyor.coordination.etcd import connect_etcd

        return await connect_etcd(
            url, settings.redis_prefix, leader_key=settings.scheduler.leader_lock_key
        )
    if url:
        redis_schemes = ("redis://", "rediss://", "unix://", "redis+sentinel://")
        if settings.coordination_url and not url.startswith(redis_schemes):
            raise ConfigError(
                f"coordination_url must start with redis://, rediss://, unix://, "
                f"redis+sentinel://, etcd:// or etcds://, not {url.split('://')[0]}://"
            )
        from conveyor.coordination.redis import connect_redis

        # Named connections let the recoverer see a worker's process die (CLIENT LIST).
        return await connect_redis(
            url, settings.redis_prefix, client_name=process_id("conveyor"),
            leader_key=settings.scheduler.leader_lock_key,
        )
    if not standalone:
        raise ConfigError(
            "this command needs CONVEYOR_COORDINATION_URL (etcd://... or redis://...) or "
            "CONVEYOR_REDIS_URL (or --redis-url): separate api, scheduler "
            "and worker processes share their queues through Redis; use `conveyor standalone` "
            "to run everything in one process without Redis"
        )
    return LocalCoordination().as_coordination()


@dataclass
class Components:
    """What one process runs on; built by ``build`` and closed by ``close``."""

    settings: Settings
    store: SqlStore
    coordination: Coordination
    catalog: Catalog
    outcomes: Outcomes
    service: TaskService
    events: EventBus
    registrations: dict[str, Registration]
    listeners: list[Listener] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    keyring: Keyring = field(default_factory=Keyring)
    periodics: list[Schedule] = field(default_factory=list)  # declared with @app.periodic

    def scheduler(self) -> Scheduler:
        from conveyor.scheduler import Scheduler

        return Scheduler(
            process_id("scheduler"), self.settings, self.store, self.coordination, self.catalog,
            balancer(self.settings), self.outcomes, self.service,
        )

    def worker(self) -> Worker:
        from conveyor.worker import Worker

        w = self.settings.worker
        return Worker(
            w.id or w.name or process_id("worker"), self.settings, self.store,
            self.coordination, self.catalog,
            executors(self.settings, self.registrations, self.keyring), self.outcomes,
        )

    async def close(self) -> None:
        await self.coordination.close()
        await self.store.close()


async def build(
    settings: Settings, *, standalone: bool = False, app: Conveyor | None = None
) -> Components:
    merged = application(settings, app)
    regs = merged.registrations
    keyring = Keyring.from_settings(settings)
    keyring.check()  # a key file it could not use stops the process here, not on first task
    metrics = Metrics(tenant_label=settings.metrics.tenant_label)
    events = EventBus([MetricsListener(metrics), MoveSpans()])
    store = SqlStore(settings.database_url, events, max_result_bytes=settings.max_result_bytes)
    coord = await coordination(settings, standalone=standalone)
    metrics.add(PoolCollector(store.db.engine, redis_pool(coord)))
    catalog = Catalog(store.configs, regs, settings.tasks, workers=store.workers)
    outcomes = Outcomes(store.moves, coord.queues, catalog, settings.tasks)
    service = TaskService(store, coord, catalog, settings, keyring=keyring)
    built = listeners(settings)
    for listener in built:
        events.add(listener)
    return Components(
        settings, store, coord, catalog, outcomes, service, events, regs, built,
        metrics=metrics, keyring=keyring, periodics=list(merged.periodics.values()),
    )

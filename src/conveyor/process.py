"""``Process``: the one owner of the order in which a Conveyor process starts and stops.

A process runs any mix of API server, scheduler and worker on shared components (``bootstrap``).

Start: bind the API port (a taken port must fail before this process registers a worker or
takes the lease) → build → store reachable (migrated first in standalone) → listeners →
metrics port → worker registered and running → scheduler running (in standalone it first
rebuilds the in-process queues from the store) → API accepting.

Stop is the reverse, separating "take no new work" from "drain": the API stops taking
requests first, so no create lands after the scheduler is gone; the scheduler stops placing
work and releases its lease, so a standby takes over at once instead of after the lease TTL;
then the worker hands back what it had not started and drains what it runs within its grace
period; listeners flush their deliveries; the metrics port goes last, so the drain stays
observable; only then are the backends closed, and the last spans exported.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

from conveyor import banner
from conveyor.bootstrap import Components, build
from conveyor.config import Settings
from conveyor.dbhelp import database_hint
from conveyor.duty import retrying
from conveyor.errors import BackendUnavailable, ConfigError
from conveyor.filelock import StandaloneLock, sqlite_path
from conveyor.observability import tracing
from conveyor.observability.sampler import Sampler

if TYPE_CHECKING:
    from conveyor.observability.server import MetricsServer
    from conveyor.registrations import Conveyor
    from conveyor.scheduler import Scheduler
    from conveyor.serving import ServedApp
    from conveyor.worker import Worker

log = logging.getLogger(__name__)

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class Process:
    """Starts and stops the roles of one process in the order the module docstring gives.

    ``parts`` lets a test run the roles on components it built (and closes) itself; the
    process then leaves closing them to the test.
    """

    def __init__(
        self, settings: Settings, *, api: bool, scheduler: bool, worker: bool,
        standalone: bool = False, parts: Components | None = None, app: Conveyor | None = None,
    ) -> None:
        self.settings = settings
        self.roles = {"api": api, "scheduler": scheduler, "worker": worker}
        self.standalone = standalone
        self.parts = parts
        self._owns_parts = parts is None
        self._app = app
        self.scheduler: Scheduler | None = None
        self.worker: Worker | None = None
        self._api: ServedApp | None = None
        self._metrics_server: MetricsServer | None = None
        self._started: set[str] = set()  # what ``stop`` must stop after a start that failed
        self._stop = asyncio.Event()
        self._lock: StandaloneLock | None = None

    def request_stop(self) -> None:
        self._stop.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        """The first signal stops gracefully and says how long it may take; a second one
        hands the running tasks back at once (recorded as interrupted, run again later)."""
        if self._stop.is_set():
            if self.worker is not None:
                log.warning("stopping now: handing the running tasks back")
                self.worker.hurry()
            return
        self.request_stop()
        running = len(self.worker.processor.running) if self.worker is not None else 0
        if running:
            again = "; press Ctrl-C again to stop now" if sig == signal.SIGINT else ""
            # A warning, so it shows at --log-level WARNING too: it tells how to stop now.
            log.warning("stopping: waiting up to %g s for %d running tasks%s",
                     self.settings.worker.graceful_shutdown_timeout, running, again)

    async def run(self) -> int:
        """Start, wait for a signal or a death, stop; the exit code says which."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            await self.start()
            # What starting made (modules, the app, the components) lives as long as the
            # process: frozen, it is no longer walked by every full collection, which a big
            # request triggers a few times (a 10,000-node workflow create: ~0.17 s of its CPU).
            # The CLI turned collection off while the roles were imported and built.
            gc.freeze()
            gc.enable()
            failed = await self.wait()
        finally:
            await self.stop()
        return 1 if failed else 0

    async def start(self) -> None:
        self._lock_file()
        tracing.configure(self.service_name())
        listener = self._bind() if self.roles["api"] else None
        try:
            parts = await self._build()
        except BaseException:
            if listener is not None:
                listener.close()
            raise
        self.scheduler = parts.scheduler() if self.roles["scheduler"] else None
        self.worker = parts.worker() if self.roles["worker"] else None
        parts.metrics.observe(Sampler(
            parts.coordination if self.roles["api"] or self.roles["scheduler"] else None,
            scheduler=self.scheduler, worker=self.worker,
            stats=parts.store.stats if self.roles["api"] else None,
        ))
        if self.standalone:
            await parts.store.migrate()
        await retrying(lambda: self._ping(parts), "reaching the database")
        self._started.add("listeners")
        for listener_part in parts.listeners:
            start = getattr(listener_part, "start", None)
            if start is not None:
                await start()
        await self._serve_metrics(parts)
        if self.worker is not None:
            self._started.add("worker")
            await self.worker.start()
        if self.scheduler is not None:
            from conveyor.schedules.declared import sync
            from conveyor.schedules.service import ScheduleService

            declared = ScheduleService(parts.service)
            await retrying(lambda: sync(declared, parts.periodics), "syncing schedules")
            self._started.add("scheduler")
            await self.scheduler.start(time.time(), rebuild_queues=self.standalone)
        if listener is not None:
            self._api = self._serve_api(parts, listener)
        await self._announce(parts)

    async def wait(self) -> bool:
        """Wait for a stop request, a dead duty or a dead API server; True on failure."""
        named: dict[asyncio.Task[Any], str] = {
            asyncio.create_task(self._stop.wait()): "stop",
        }
        for role in (self.worker, self.scheduler):
            if role is not None:
                named[asyncio.create_task(role.wait())] = "duty"
        if self._api is not None and self._api.task is not None:
            named[self._api.task] = "api"
        done, pending = await asyncio.wait(named, return_when=asyncio.FIRST_COMPLETED)
        failed = False
        for task in done:
            if named[task] == "duty" and task.result() is not None:
                failed = True
            if named[task] == "api":
                failed = failed or task.exception() is not None or not self._stop.is_set()
        for task in pending:
            if named[task] != "api":
                task.cancel()
        return failed

    async def stop(self) -> None:
        log.info("stopping")
        if self._api is not None:
            await self._api.stop()
        if self.scheduler is not None and "scheduler" in self._started:
            await self.scheduler.stop()
        if self.worker is not None and "worker" in self._started:
            await self.worker.stop()
        if self.parts is not None and "listeners" in self._started:
            for listener in self.parts.listeners:
                stop = getattr(listener, "stop", None)
                if stop is not None:
                    await stop()
        if self._metrics_server is not None:
            await self._metrics_server.stop()
        if self.parts is not None and self._owns_parts:
            await self.parts.close()
        if self._lock is not None:
            self._lock.release()
        tracing.shutdown()  # last: the spans of the drain are exported too
        log.info("stopped")

    def service_name(self) -> str:
        """The trace service of this process (unless ``OTEL_SERVICE_NAME`` names one):
        ``conveyor-standalone`` or its roles, e.g. ``conveyor-worker``."""
        roles = ["standalone"] if self.standalone else [r for r, on in self.roles.items() if on]
        return "conveyor-" + "-".join(roles)

    def auth_required(self) -> bool:
        """Keys are required unless asked otherwise, except for standalone on loopback."""
        if self.settings.auth_required is not None:
            return self.settings.auth_required
        return not (self.standalone and self.settings.host in LOOPBACK)

    async def _ping(self, parts: Components) -> None:
        """Reach the store; a database that is missing or unmigrated fails at once, saying
        how to fix it (``dbhelp``), instead of being retried like a blip."""
        try:
            await parts.store.ping()
        except BackendUnavailable as exc:
            hint = database_hint(self.settings.database_url, str(exc))
            if hint is not None:
                raise ConfigError(hint) from exc
            raise

    def _lock_file(self) -> None:
        """Standalone owns its SQLite file: a second one on it is refused (``filelock``)."""
        db = sqlite_path(self.settings.database_url) if self.standalone else None
        if db is not None:
            self._lock = StandaloneLock(db)
            self._lock.acquire()

    async def _build(self) -> Components:
        if self.parts is None:
            self.parts = await build(self.settings, standalone=self.standalone, app=self._app)
        return self.parts

    def _bind(self) -> socket.socket:
        from conveyor.serving import bind

        return bind(self.settings.host, self.settings.port, reuse_port=self.settings.reuse_port)

    async def _serve_metrics(self, parts: Components) -> None:
        """The metrics port (``--metrics-port``): /metrics, /healthz, /readyz."""
        if self.settings.metrics_port is None:
            return
        from conveyor.observability.server import MetricsServer
        from conveyor.serving import check_backends

        self._metrics_server = MetricsServer(
            parts.metrics, self.settings.metrics_port,
            lambda: check_backends(parts.store, parts.coordination), host=self.settings.host,
            limits=self.settings.server,
        )
        await self._metrics_server.start()

    def _serve_api(self, parts: Components, listener: socket.socket) -> ServedApp:
        # Imported here: FastAPI, the routes and the console are most of a process's import
        # time, and a worker or scheduler process (which a fleet starts often) needs none;
        # nor do they need uvicorn (``serving``) unless they serve a metrics port.
        from conveyor.api.app import create_app
        from conveyor.api.guard import served_hosts
        from conveyor.serving import ServedApp

        auth = self.auth_required()
        if not auth:
            log.warning("API keys are not required: anyone who can reach %s may act as admin",
                        self.settings.host)
        app = create_app(
            parts.service, auth_required=auth, metrics=parts.metrics,
            hosts=served_hosts(self.settings.server, self.settings.host),
        )
        served = ServedApp(app, listener, "api-server", self.settings.server)
        served.start()
        return served

    async def _announce(self, parts: Components) -> None:
        """The start banner, once every role is up (never before: a failed start says only
        why it failed)."""
        s = self.settings
        if self.roles["api"]:
            log.info(banner.api_line(s, standalone=self.standalone))
        else:
            log.info(banner.process_line(s, [r for r, on in self.roles.items() if on]))
        if self.worker is not None:
            log.info(banner.worker_line(self.worker.id, s.worker.capacity,
                                        self.worker.heartbeat.info.types))
        if self.scheduler is not None:
            elector = self.scheduler.elector
            lease = None if elector.epoch is not None else await parts.coordination.lease.current()
            log.info(banner.scheduler_line(elector.holder, elector.epoch,
                                           lease.holder if lease else None))

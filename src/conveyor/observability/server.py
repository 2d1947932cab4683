"""The metrics port of scheduler and worker processes: ``/metrics``, ``/healthz``, ``/readyz``.

Schedulers and workers serve no API, yet need to be scraped and probed like the API is; this is
a three-route Starlette app on its own server (``serving``), started and stopped by the process
beside the duties. Readiness is ``serving.check_backends``, the same check as the API's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor.config import ServerSettings
from conveyor.observability.metrics import Metrics, metrics_response
from conveyor.serving import ServedApp, bind

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], Awaitable[None]]


def probe_app(metrics: Metrics, ready_check: ReadyCheck) -> Starlette:
    """The three routes, as an ASGI app (also usable in tests without a socket)."""

    async def scrape(request: Request) -> Response:
        return await metrics_response(metrics)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await ready_check()
        except Exception as exc:
            return JSONResponse({"status": "unready", "reason": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready"})

    return Starlette(routes=[
        Route("/metrics", scrape), Route("/healthz", healthz), Route("/readyz", readyz),
    ])


class MetricsServer:
    """``probe_app`` served on ``host:port`` until ``stop``."""

    def __init__(
        self, metrics: Metrics, port: int, ready_check: ReadyCheck, *, host: str = "0.0.0.0",
        limits: ServerSettings | None = None,
    ) -> None:
        self._app = probe_app(metrics, ready_check)
        self._limits = limits
        self._host = host
        self._wanted_port = port
        self._served: ServedApp | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return self._wanted_port if self._served is None else self._served.port

    async def start(self) -> None:
        sock = bind(self._host, self._wanted_port, backlog=128)
        self._served = ServedApp(self._app, sock, "metrics", self._limits)
        self._served.start()
        log.info("metrics on http://%s:%d/metrics", self._host, self.port)

    async def stop(self) -> None:
        if self._served is not None:
            await self._served.stop()
            self._served = None

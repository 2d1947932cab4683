"""One trace per task across real processes: API, scheduler and worker export their spans over
OTLP/HTTP (configured by the standard OTEL_* environment only) to a collector run by the test,
and the business service the HTTP executor calls receives the trace in ``traceparent``.

The collector decodes the OTLP protobuf requests with ``opentelemetry-proto`` (installed with
``conveyor[otel]``), so the exporter tested is the one production uses.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.distributed.harness import cluster, wait_until

trace_service = pytest.importorskip(
    "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
    reason="tracing is tested with conveyor[otel] installed (setup.sh --dev installs it)",
)

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver at ``/v1/traces`` and a business service at ``/business``
    that fails its first call (so the task has two attempts) and records ``traceparent``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.spans: list[Span] = []
        self.traceparents: list[str | None] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def names(self, trace_id: str) -> list[str]:
        return sorted(s.name for s in self.trace(trace_id))

    def take(self, body: bytes) -> None:
        request = trace_service.ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                with self.lock:
                    self.spans.extend(
                        Span(attrs.get("service.name", ""), s.name, s.trace_id.hex(),
                             s.span_id.hex(), s.parent_span_id.hex())
                        for s in scope.spans
                    )


class Handler(BaseHTTPRequestHandler):
    server: Collector
    protocol_version = "HTTP/1.1"  # the exporter keeps its connection open between exports

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/v1/traces":
            self.server.take(body)
            self._answer(200, b"", "application/x-protobuf")
            return
        with self.server.lock:
            self.server.traceparents.append(self.headers.get("traceparent"))
            first = len(self.server.traceparents) == 1
        if first:
            self._answer(503, b'{"error": "try again"}')
        else:
            self._answer(200, json.dumps({"success": True, "data": {"ok": 1}}).encode())

    def _answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


EXPECTED = sorted([
    "POST /api/v1/tasks", "conveyor.create", "conveyor.created",
    "conveyor.dispatch", "conveyor.dispatch",
    "conveyor.started", "conveyor.started",
    "conveyor.attempt", "conveyor.attempt",
    "conveyor.execute http", "conveyor.execute http",
    "conveyor.retrying", "conveyor.succeeded",
])


@pytest.mark.timeout(180)
def test_one_trace_follows_a_task_through_every_process(
    tmp_path: Path, collector: Collector
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.url}/v1/traces",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "CONVEYOR_HTTP_ALLOWED_HOSTS": "127.0.0.1",
        "CONVEYOR_TASKS__BACKOFF_BASE": "0.1",
    }
    with cluster(tmp_path, **env) as c:
        c.api()
        c.scheduler()
        c.worker(capacity=2)
        c.wait_workers(1)
        put = httpx.put(f"{c.url}/api/v1/task-configs/traced_call", json={
            "executor": "http", "executor_config": {"url": f"{collector.url}/business"},
            "max_retries": 3,
        }, timeout=10)
        assert put.status_code in (200, 201), put.text
        created = httpx.post(
            f"{c.url}/api/v1/tasks", json={"task_type": "traced_call", "payload": {"x": 1}},
            headers={"traceparent": f"00-{trace_id}-{caller_span}-01"}, timeout=10,
        )
        assert created.status_code == 201, created.text
        task = created.json()
        assert task["metadata"]["traceparent"].split("-")[1] == trace_id
        c.wait_status("SUCCESS", 1, 60)
        wait_until(lambda: collector.names(trace_id) == EXPECTED, 30, 0.2, "the task's spans")

    spans = collector.trace(trace_id)
    # The config's PUT came without a traceparent: a trace of its own, nothing else is.
    assert [s.name for s in collector.spans if s not in spans] == [
        "PUT /api/v1/task-configs/{task_type}"]
    assert {s.service for s in spans} == {
        "conveyor-api", "conveyor-scheduler", "conveyor-worker"}
    ids = {s.span_id for s in spans}
    [request] = [s for s in spans if s.name == "POST /api/v1/tasks"]
    assert request.parent_id == caller_span, "the create request continues the caller's span"
    [create] = [s for s in spans if s.name == "conveyor.create"]
    assert create.parent_id == request.span_id
    for s in spans:
        if s.name not in ("POST /api/v1/tasks", "conveyor.create", "conveyor.execute http"):
            assert s.parent_id == create.span_id, f"{s.name} hangs off the create"
    executes = {s.span_id for s in spans if s.name == "conveyor.execute http"}
    attempts = {s.span_id for s in spans if s.name == "conveyor.attempt"}
    assert {s.parent_id for s in spans if s.span_id in executes} == attempts
    # The business service saw both attempts, each in the trace under its executor span.
    assert len(collector.traceparents) == 2
    for header in collector.traceparents:
        assert header is not None
        _, header_trace, header_parent, _ = header.split("-")
        assert header_trace == trace_id and header_parent in executes
    assert caller_span not in ids

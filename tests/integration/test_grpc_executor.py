"""The gRPC executor against a real grpc.aio server on a free local port."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import pytest

from conveyor.config import Settings
from conveyor.errors import PermanentError, RetryableError
from conveyor.executors.grpc import GrpcExecutor, parse_target
from conveyor.executors.grpc_pb import executor_pb2, executor_pb2_grpc
from conveyor.executors.netguard import AddressNotAllowed
from conveyor.models import Task
from conveyor.observability import tracing
from tests.support.executors import allowing, running_task

Response = executor_pb2.ExecuteResponse


@dataclass
class Servicer(executor_pb2_grpc.ExecutorServicer):
    """Behaves according to the task type, and records what it saw."""

    calls: list[tuple[str, int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def Execute(
        self, request: executor_pb2.ExecuteRequest, context: grpc.aio.ServicerContext
    ) -> Response:
        metadata = {k: v for k, v in context.invocation_metadata() or ()}
        payload = json.loads(request.payload_json)
        self.calls.append((request.task_id, request.attempt, payload, metadata))
        kind = request.task_type
        self.hits[kind] = self.hits.get(kind, 0) + 1
        if kind == "ok" or (kind == "flaky" and self.hits[kind] > 1):
            data = {"echo": payload, "idempotency_key": metadata.get("idempotency-key")}
            return Response(success=True, data_json=json.dumps(data))
        if kind == "flaky":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        if kind == "fail":
            return Response(success=False, error="card declined")
        if kind == "fail-retryable":
            return Response(success=False, error="busy", retryable=True)
        if kind == "empty":
            return Response(success=True)
        if kind == "slow":
            return await self._slow()
        code = {"invalid": grpc.StatusCode.INVALID_ARGUMENT,
                "exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED}.get(kind)
        await context.abort(code or grpc.StatusCode.UNIMPLEMENTED, f"no behaviour {kind}")
        raise AssertionError("abort returns by raising")

    async def _slow(self) -> Response:
        self.slow_started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return Response(success=True)


@dataclass
class Service:
    target: str
    port: int
    servicer: Servicer


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    servicer = Servicer()
    server = grpc.aio.server()
    executor_pb2_grpc.add_ExecutorServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Service(f"127.0.0.1:{port}", port, servicer)
    finally:
        await server.stop(grace=None)


def make_task(task_type: str, attempt: int = 1, timeout: float = 5) -> Task:
    return running_task("01TASKGRPC", task_type, attempt=attempt, timeout=timeout)


def settings(*allowed: str) -> Settings:
    return allowing(*allowed)


@pytest.fixture
async def executor() -> AsyncIterator[GrpcExecutor]:
    executor = GrpcExecutor(settings("127.0.0.1"))
    yield executor
    await executor.close()


async def test_success_returns_data_with_the_idempotency_key(
    executor: GrpcExecutor, service: Service
) -> None:
    result = await executor.execute(make_task("ok"), {"target": service.target})
    assert result == {"echo": {"amount": 42}, "idempotency_key": "01TASKGRPC:1"}
    assert service.servicer.calls[0][:2] == ("01TASKGRPC", 1)
    assert await executor.execute(make_task("empty"), {"target": service.target}) is None


async def test_metadata_of_the_config_goes_with_every_call(
    executor: GrpcExecutor, service: Service
) -> None:
    config = {"target": service.target, "metadata": {"authorization": "Bearer t0ken"}}
    await executor.execute(make_task("ok"), config)
    metadata = service.servicer.calls[0][3]
    assert metadata["authorization"] == "Bearer t0ken"
    assert metadata["idempotency-key"] == "01TASKGRPC:1"


async def test_business_failure_is_permanent_unless_marked_retryable(
    executor: GrpcExecutor, service: Service
) -> None:
    with pytest.raises(PermanentError, match="card declined"):
        await executor.execute(make_task("fail"), {"target": service.target})
    with pytest.raises(RetryableError, match="busy"):
        await executor.execute(make_task("fail-retryable"), {"target": service.target})


async def test_unavailable_then_success_on_the_next_attempt(
    executor: GrpcExecutor, service: Service
) -> None:
    with pytest.raises(RetryableError, match="UNAVAILABLE: warming up"):
        await executor.execute(make_task("flaky", attempt=1), {"target": service.target})
    result = await executor.execute(make_task("flaky", attempt=2), {"target": service.target})
    assert result["idempotency_key"] == "01TASKGRPC:2"
    assert len(executor._channels) == 1  # one channel, reused


async def test_status_codes_follow_the_retry_split(
    executor: GrpcExecutor, service: Service
) -> None:
    with pytest.raises(PermanentError, match="INVALID_ARGUMENT"):
        await executor.execute(make_task("invalid"), {"target": service.target})
    with pytest.raises(PermanentError, match="UNIMPLEMENTED"):
        await executor.execute(make_task("unknown"), {"target": service.target})
    with pytest.raises(RetryableError, match="RESOURCE_EXHAUSTED"):
        await executor.execute(make_task("exhausted"), {"target": service.target})


async def test_deadline_from_the_task_timeout_is_retryable(
    executor: GrpcExecutor, service: Service
) -> None:
    started = time.monotonic()
    with pytest.raises(RetryableError, match="DEADLINE_EXCEEDED"):
        await executor.execute(make_task("slow", timeout=0.3), {"target": service.target})
    assert time.monotonic() - started < 1.5
    await asyncio.wait_for(service.servicer.cancelled.wait(), timeout=2)


async def test_worker_timeout_cancels_the_call_promptly(
    executor: GrpcExecutor, service: Service
) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            executor.execute(make_task("slow"), {"target": service.target}), timeout=0.3
        )
    assert time.monotonic() - started < 1.0
    await asyncio.wait_for(service.servicer.cancelled.wait(), timeout=2)


async def test_cancellation_mid_call_reaches_the_server(
    executor: GrpcExecutor, service: Service
) -> None:
    running = asyncio.create_task(executor.execute(make_task("slow"), {"target": service.target}))
    await asyncio.wait_for(service.servicer.slow_started.wait(), timeout=2)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await asyncio.wait_for(service.servicer.cancelled.wait(), timeout=2)
    assert await executor.execute(make_task("ok"), {"target": service.target})


async def test_unreachable_server_is_retryable(executor: GrpcExecutor) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(RetryableError, match="UNAVAILABLE"):
        await executor.execute(make_task("ok", timeout=3), {"target": f"127.0.0.1:{port}"})


async def test_loopback_and_metadata_refused_when_not_allowed(service: Service) -> None:
    executor = GrpcExecutor(settings())
    try:
        for target in (service.target, f"localhost:{service.port}", "169.254.169.254:50051"):
            with pytest.raises(AddressNotAllowed, match="allowed_hosts"):
                await executor.execute(make_task("ok"), {"target": target})
        assert executor._channels == {}
    finally:
        await executor.close()
    assert service.servicer.calls == []


async def test_allowed_host_name_is_dialled_at_the_checked_address(service: Service) -> None:
    executor = GrpcExecutor(settings("localhost", "::1"))
    try:
        result = await executor.execute(make_task("ok"), {"target": f"localhost:{service.port}"})
    except RetryableError:  # localhost resolved to ::1 first, where the server does not listen
        pytest.skip("localhost resolves to IPv6 first on this machine")
    finally:
        await executor.close()
    assert result["echo"] == {"amount": 42}


def test_parse_target() -> None:
    assert parse_target("svc.example:50051") == ("svc.example", 50051)
    assert parse_target("[::1]:7") == ("::1", 7)
    for bad in ("svc", "dns:///svc:1", "::1:50051", "svc:0", "svc:http", "[::1:5"):
        with pytest.raises(PermanentError):
            parse_target(bad)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({}, "target is required"),
        ({"target": "127.0.0.1:1", "timeout_seconds": -1}, "timeout_seconds"),
        ({"target": "127.0.0.1:1", "tls": "yes"}, "tls"),
        ({"target": "127.0.0.1:1", "metadata": {"a": 1}}, "metadata"),
        ({"target": "127.0.0.1:1", "metadata": {"Upper": "x"}}, "lower-case"),
        ({"target": "127.0.0.1:1", "metadata": {"idempotency-key": "x"}}, "idempotency-key"),
    ],
)
async def test_bad_config_is_permanent(
    executor: GrpcExecutor, config: dict[str, Any], match: str
) -> None:
    with pytest.raises(PermanentError, match=match):
        await executor.execute(make_task("ok"), config)


async def test_the_trace_goes_with_the_call_as_traceparent(
    executor: GrpcExecutor, service: Service
) -> None:
    sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="needs conveyor[otel]")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exported = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    assert tracing.configure("conveyor-test", provider=provider)
    try:
        with tracing.span("conveyor.execute grpc"):
            await executor.execute(make_task("ok"), {"target": service.target})
    finally:
        tracing.shutdown()
        provider.shutdown()
    [span] = exported.get_finished_spans()
    context = span.get_span_context()
    sent = service.servicer.calls[0][3]["traceparent"].split("-")
    assert sent[1:3] == [f"{context.trace_id:032x}", f"{context.span_id:016x}"]
    await executor.execute(make_task("ok"), {"target": service.target})
    assert "traceparent" not in service.servicer.calls[1][3], "tracing off: nothing is sent"

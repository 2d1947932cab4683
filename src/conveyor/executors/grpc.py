"""The ``grpc`` executor: one attempt of a task is one ``conveyor.executor.v1.Executor/Execute``.

``executor_config``: ``target`` (``host:port`` or ``[v6]:port``, required), ``timeout_seconds``
(optional, capped at the task timeout), ``tls`` (optional, default false) and ``metadata``
(optional: lower-case names to text values, sent with every call, e.g. ``authorization``).
Every ``metadata`` value is secret (``SECRET_FIELDS``): stored sealed, shown as ``"***"``.
The proto file is ``executors/proto/executor.proto``; it states the outcome contract, which
this module applies:

* ``success`` returns ``data_json`` decoded (empty → ``None``);
* ``success = false`` raises ``RetryableError`` if ``retryable`` else ``PermanentError`` (proto3's
  default ``false`` matches the HTTP executor: an unqualified business failure is final);
* a status of UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED or ABORTED raises
  ``RetryableError``; any other non-OK code ``PermanentError``.

The call carries the metadata ``idempotency-key: {task_id}:{attempt}`` and a deadline of the
task timeout, so the service stops working on an attempt the worker has given up on; with
tracing on, also ``traceparent`` (as the HTTP executor's header). When the
worker cancels ``execute`` (timeout or a cancel request), grpc.aio cancels the RPC and the
server sees CANCELLED.

Address safety is the same as the HTTP executor's (``netguard``): the target host is resolved
and checked on every call. Plain-text channels are aimed at the checked address itself
(``ipv4:`` / ``ipv6:`` targets with the original authority), so the name cannot be re-resolved
elsewhere behind the check; TLS channels keep the name, which the certificate must match.
Channels are created once per (address, authority) and reused: a channel multiplexes calls,
so one per target is all a worker needs. grpc and the generated messages are imported on the
first call: every worker builds this executor, and most never call it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.config import Settings
from conveyor.errors import PermanentError, RetryableError
from conveyor.executors.http import string_map
from conveyor.executors.netguard import Allowlist, IPAddress, resolve_checked
from conveyor.models import Task
from conveyor.observability import tracing

if TYPE_CHECKING:
    import grpc.aio

    from conveyor.executors.grpc_pb import executor_pb2

EXECUTE_METHOD = "/conveyor.executor.v1.Executor/Execute"
SECRET_FIELDS = ("metadata.*",)
_METADATA_NAME = re.compile(r"^[0-9a-z_.-]+$")
IDEMPOTENCY_KEY = "idempotency-key"
RETRYABLE_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"})


@dataclass(frozen=True, slots=True)
class GrpcCall:
    host: str
    port: int
    timeout: float
    tls: bool
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_target(target: str) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port``; schemes (``dns:``, ``unix:``) are not accepted,
    because the address check could not see where they lead."""
    host, sep, port_text = target.rpartition(":")
    if not sep or not host or not port_text.isdigit() or "/" in target:
        raise PermanentError(f"executor_config.target {target!r} must be host:port")
    port = int(port_text)
    if not 0 < port < 65536:
        raise PermanentError(f"executor_config.target {target!r} has an invalid port")
    if host.startswith("["):
        if not host.endswith("]"):
            raise PermanentError(f"executor_config.target {target!r} must be host:port")
        host = host[1:-1]
    elif ":" in host:
        raise PermanentError(f"write an IPv6 target as [address]:port, not {target!r}")
    return host, port


def parse_config(task: Task, config: Mapping[str, Any]) -> GrpcCall:
    """Read ``executor_config``; a bad config fails the task for good."""
    target = config.get("target")
    if not isinstance(target, str) or not target:
        raise PermanentError(f"task type {task.task_type!r}: executor_config.target is required")
    host, port = parse_target(target)
    timeout = config.get("timeout_seconds", task.timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise PermanentError("executor_config.timeout_seconds must be a positive number")
    tls = config.get("tls", False)
    if not isinstance(tls, bool):
        raise PermanentError("executor_config.tls must be true or false")
    metadata = string_map(config, "metadata")
    for name in metadata:
        if not _METADATA_NAME.match(name) or name.endswith("-bin") or name == IDEMPOTENCY_KEY:
            raise PermanentError(
                f"executor_config.metadata name {name!r} must be lower-case letters, digits, "
                f"'-', '_' or '.', not end in -bin, and not be {IDEMPOTENCY_KEY!r}"
            )
    return GrpcCall(host, port, float(min(timeout, task.timeout)), tls, tuple(metadata.items()))


def interpret(response: executor_pb2.ExecuteResponse) -> Any:
    """Apply the outcome contract to a response that arrived with status OK."""
    if not response.success:
        error = response.error or "the service reported a failure"
        if response.retryable:
            raise RetryableError(error)
        raise PermanentError(error)
    if not response.data_json:
        return None
    try:
        return json.loads(response.data_json)
    except ValueError as exc:
        raise PermanentError(f"the service returned data_json that is not JSON: {exc}") from exc


def error_for(exc: grpc.aio.AioRpcError) -> Exception:
    """The retry split for a non-OK status (module docstring)."""
    code = exc.code()
    message = f"gRPC {getattr(code, 'name', code)}: {exc.details() or 'no details'}"
    if getattr(code, "name", None) in RETRYABLE_CODES:
        return RetryableError(message)
    return PermanentError(message)


def _pinned_target(address: IPAddress, port: int) -> str:
    if address.version == 6:
        return f"ipv6:[{address}]:{port}"
    return f"ipv4:{address}:{port}"


class GrpcExecutor:
    """Runs tasks by calling ``conveyor.executor.v1.Executor/Execute`` on a business service."""

    def __init__(self, settings: Settings) -> None:
        self._allowlist = Allowlist.parse(settings.http_executor.allowed_hosts)
        self._channels: dict[tuple[str, str, bool], grpc.aio.Channel] = {}
        self._methods: dict[tuple[str, str, bool], grpc.aio.UnaryUnaryMultiCallable] = {}

    async def _method(self, call: GrpcCall) -> grpc.aio.UnaryUnaryMultiCallable:
        """The ``Execute`` callable on the (cached) channel to the checked target."""
        addresses = await resolve_checked(call.host, call.port, self._allowlist)
        target = call.authority if call.tls else _pinned_target(addresses[0], call.port)
        key = (target, call.authority, call.tls)
        method = self._methods.get(key)
        if method is None:
            import grpc.aio

            from conveyor.executors.grpc_pb import executor_pb2

            if call.tls:
                channel = grpc.aio.secure_channel(target, grpc.ssl_channel_credentials())
            else:
                options = [("grpc.default_authority", call.authority)]
                channel = grpc.aio.insecure_channel(target, options=options)
            # The multicallable is built by hand rather than through the generated stub,
            # which is untyped; the wire method is fixed by the proto's package and service.
            method = channel.unary_unary(
                EXECUTE_METHOD,
                request_serializer=executor_pb2.ExecuteRequest.SerializeToString,
                response_deserializer=executor_pb2.ExecuteResponse.FromString,
            )
            self._channels[key] = channel
            self._methods[key] = method
        return method

    async def execute(self, task: Task, config: Mapping[str, Any]) -> Any:
        call = parse_config(task, config)
        execute = await self._method(call)
        import grpc.aio  # imported by ``_method`` already

        from conveyor.executors.grpc_pb import executor_pb2

        request = executor_pb2.ExecuteRequest(
            task_id=task.id,
            attempt=task.attempt,
            task_type=task.task_type,
            payload_json=json.dumps(task.payload),
        )
        try:
            response = await execute(
                request,
                timeout=call.timeout,
                metadata=(*call.metadata, (IDEMPOTENCY_KEY, f"{task.id}:{task.attempt}"),
                          *tracing.outgoing().items()),  # traceparent, like the HTTP header
            )
        except grpc.aio.AioRpcError as exc:
            raise error_for(exc) from exc
        if not isinstance(response, executor_pb2.ExecuteResponse):
            raise PermanentError(f"unexpected gRPC response {type(response).__name__}")
        return interpret(response)

    async def close(self) -> None:
        channels, self._channels, self._methods = list(self._channels.values()), {}, {}
        for channel in channels:
            await channel.close()

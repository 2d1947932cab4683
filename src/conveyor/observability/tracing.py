"""OpenTelemetry traces (``conveyor[otel]``): the one entry to it. The SDK itself is imported
(by ``otel``) only once tracing is switched on, so a process that does not trace never loads it.

Without the extra, or with tracing not asked for, every function here is a cheap no-op and
nothing else in Conveyor changes. Tracing is asked for by the standard environment:
``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``, any exporter installed under the
``opentelemetry_traces_exporter`` entry point; ``none`` turns it off) or an OTLP endpoint
(``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), unless
``OTEL_SDK_DISABLED=true``. Tracing is not on merely because the extra is installed: a process
with no collector to send to would log an export failure every few seconds. The SDK reads the
rest itself (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``,
``OTEL_BSP_*``, the exporter's own variables). A provider installed before Conveyor starts
(``opentelemetry-instrument``) is used as it is.

A task's trace context travels with the task, not with a process: the create stores the W3C
``traceparent`` (and ``tracestate``) of its span in the task's metadata (``TRACE_KEYS``), and
every later span of the task, in whichever process, is a child of that context.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

log = logging.getLogger(__name__)

#: The metadata keys that carry a task's trace context (W3C Trace Context names).
TRACE_KEYS = ("traceparent", "tracestate")
ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_state: dict[str, Any] = {}  # "tracer", and "provider" when this module installed it


def available() -> bool:
    """Whether the extra is installed. Asked only when tracing is wanted: the SDK is imported
    (by ``otel``) only then, since a process that does not trace should not pay for it."""
    try:
        return importlib.util.find_spec("opentelemetry.sdk") is not None
    except (ImportError, ValueError):  # a parent missing, or blocked in sys.modules
        return False


def wanted(env: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces (see the module docstring)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if names:
        return names != "none"
    return any(env.get(name) for name in ENDPOINTS)


def configure(service_name: str, provider: TracerProvider | None = None) -> bool:
    """Start tracing for this process if the extra is installed and the environment asks;
    ``service_name`` applies unless ``OTEL_SERVICE_NAME`` names the service. True when on.

    A ``provider`` given (a test's, exporting to memory) is used whatever the environment
    says, and left to its owner to shut down."""
    if provider is not None:
        _state["tracer"] = provider.get_tracer("conveyor")
        return True
    if not wanted(os.environ) or enabled() or not available():
        return enabled()
    from conveyor.observability import otel

    provider = otel.installed()
    if provider is None:  # nobody installed one before us
        provider = _state["provider"] = otel.new_provider(service_name)
    _state["tracer"] = provider.get_tracer("conveyor")
    log.info("tracing on: service %s", os.environ.get("OTEL_SERVICE_NAME") or service_name)
    return True


def shutdown() -> None:
    """Flush the spans not yet exported and stop (at the end of a process's stop)."""
    provider = _state.pop("provider", None)
    _state.pop("tracer", None)
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return "tracer" in _state


class Marks:
    """What code inside a ``span`` may add to it: attributes, and a failure."""

    def __init__(self, span: Span | None = None) -> None:
        self._span = span

    def note(self, **attributes: str | int | float | bool) -> None:
        if self._span is not None:
            self._span.set_attributes({f"conveyor.{k}": v for k, v in attributes.items()})

    def rename(self, name: str) -> None:
        if self._span is not None:
            self._span.update_name(name)

    def fail(self, description: str) -> None:
        if self._span is not None:
            from conveyor.observability import otel

            self._span.set_status(otel.ERROR, description)


@contextlib.contextmanager
def span(
    name: str, *, parent: Mapping[str, str] | None = None, server: bool = False,
    **attributes: str | int | float | bool,
) -> Iterator[Marks]:
    """A span around the block, current inside it. Its parent is the context carried by
    ``parent`` (a task's metadata, a request's headers) when given, else the current span.
    Attributes are named ``conveyor.<name>``."""
    tracer = _state.get("tracer")
    if tracer is None:
        yield Marks()
        return
    from conveyor.observability import otel

    context = otel.extract(parent) if parent is not None else None
    with tracer.start_as_current_span(
        name, context=context, kind=otel.SERVER if server else otel.INTERNAL,
        attributes={f"conveyor.{k}": v for k, v in attributes.items()},
    ) as current:
        yield Marks(current)


def record(
    name: str, parent: Mapping[str, str], start: float, end: float,
    **attributes: str | int | float | bool,
) -> None:
    """A finished span of ``start``..``end`` (epoch seconds), child of ``parent``'s context:
    for what is known only after it happened (a dispatch pass, a committed move)."""
    tracer = _state.get("tracer")
    if tracer is None:
        return
    from conveyor.observability import otel

    done = tracer.start_span(
        name, context=otel.extract(parent), start_time=int(start * 1e9),
        attributes={f"conveyor.{k}": v for k, v in attributes.items()},
    )
    done.end(end_time=int(max(start, end) * 1e9))


def stamp(metadata: Mapping[str, str]) -> dict[str, str]:
    """``metadata`` with the current span's context in ``TRACE_KEYS`` (replacing any given),
    so the task carries its trace; unchanged when tracing is off or no span is current."""
    if not enabled():
        return dict(metadata)
    from conveyor.observability import otel

    if not otel.current_is_valid():
        return dict(metadata)
    carrier = {k: v for k, v in metadata.items() if k not in TRACE_KEYS}
    otel.inject(carrier)
    return carrier


def outgoing() -> dict[str, str]:
    """The headers (or gRPC metadata) that carry the current span to a called service."""
    carrier: dict[str, str] = {}
    if enabled():
        from conveyor.observability import otel

        otel.inject(carrier)
    return carrier


def carries_trace(metadata: Mapping[str, str]) -> bool:
    return "traceparent" in metadata


"""What tracing needs of the OpenTelemetry SDK, imported only once tracing is switched on.

``tracing`` is imported by every process, and the SDK costs a noticeable share of a worker's
start-up; with tracing off (the default) this module, and the SDK with it, is never loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import entry_points

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from conveyor.errors import ConfigError
from conveyor.observability.tracing import TRACE_KEYS

EXPORTERS_GROUP = "opentelemetry_traces_exporter"
INTERNAL, SERVER, ERROR = SpanKind.INTERNAL, SpanKind.SERVER, StatusCode.ERROR


def installed() -> TracerProvider | None:
    """The SDK provider installed before Conveyor started (``opentelemetry-instrument``)."""
    found = trace.get_tracer_provider()
    return found if isinstance(found, TracerProvider) else None


def new_provider(service_name: str) -> TracerProvider:
    """A provider exporting to ``OTEL_TRACES_EXPORTER`` (otlp by default), installed as the
    global one."""
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    for exporter in exporters(os.environ.get("OTEL_TRACES_EXPORTER") or "otlp"):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def exporters(names: str) -> list[SpanExporter]:
    found = {ep.name: ep for ep in entry_points(group=EXPORTERS_GROUP)}
    if "otlp" not in found and "otlp_proto_http" in found:
        found["otlp"] = found["otlp_proto_http"]
    chosen = []
    for name in (n.strip() for n in names.lower().split(",") if n.strip()):
        if name not in found:
            raise ConfigError(
                f"OTEL_TRACES_EXPORTER names {name!r}, which no installed package provides "
                f"(installed: {', '.join(sorted(found)) or 'none'}); install conveyor[otel] "
                f"for otlp"
            )
        chosen.append(found[name].load()())
    return chosen


def current_is_valid() -> bool:
    return bool(trace.get_current_span().get_span_context().is_valid)


def inject(carrier: dict[str, str]) -> None:
    TraceContextTextMapPropagator().inject(carrier)


def extract(carrier: Mapping[str, str]) -> Context:
    return TraceContextTextMapPropagator().extract(
        {k.lower(): v for k, v in carrier.items() if k.lower() in TRACE_KEYS}
    )


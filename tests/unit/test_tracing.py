"""Tracing's switches: asked for by the OTEL_* environment only, and a no-op without the
``conveyor[otel]`` extra (checked in a child interpreter that cannot import the SDK)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conveyor.errors import ConfigError
from conveyor.observability import tracing


@pytest.mark.parametrize(("env", "on"), [
    ({}, False),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
    ({"OTEL_TRACES_EXPORTER": "none"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, False),
])
def test_the_environment_asks_for_traces(env: dict[str, str], on: bool) -> None:
    assert tracing.wanted(env) is on


def test_off_by_default_everything_is_a_no_op() -> None:
    assert not tracing.enabled()
    with tracing.span("x", parent={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}):
        assert tracing.stamp({"a": "b"}) == {"a": "b"}
        assert tracing.outgoing() == {}


@pytest.mark.skipif(not tracing.available(), reason="needs conveyor[otel]")
def test_an_unknown_exporter_is_named() -> None:
    from conveyor.observability import otel

    with pytest.raises(ConfigError, match=r"'zipkin-nope'.*installed: .*otlp"):
        otel.exporters("otlp,zipkin-nope")


WITHOUT_EXTRA = """
import sys
# As if conveyor[otel] were not installed: opentelemetry-api may still be there (FastAPI
# 0.165+ depends on it), the SDK and its exporters are not.
sys.modules["opentelemetry.sdk"] = None
from conveyor.observability import tracing
import conveyor.process  # every module that traces imports cleanly
assert not tracing.available()
assert tracing.configure("conveyor-test") is False and not tracing.enabled()
with tracing.span("conveyor.attempt", parent={}) as marks:
    marks.note(status="SUCCESS")
    marks.fail("no")
tracing.record("conveyor.created", {}, 1.0, 2.0)
assert tracing.stamp({"k": "v"}) == {"k": "v"} and tracing.outgoing() == {}
tracing.shutdown()
print("ok")
"""


def test_without_the_extra_nothing_fails() -> None:
    env = dict(os.environ, OTEL_TRACES_EXPORTER="otlp")
    done = subprocess.run([sys.executable, "-c", WITHOUT_EXTRA], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

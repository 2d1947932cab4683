"""``metrics.tenant_label``: per-task series carry the tenant only when asked for (each tenant
multiplies the series), and the default keeps the labels the families always had."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from conveyor.config import load_settings
from conveyor.events import Event, EventKind
from conveyor.models import Priority, Task, TaskStatus
from conveyor.observability.metrics import Metrics, MetricsListener

TASK = Task("01TENANTMETRIC", "report", Priority.NORMAL, {}, TaskStatus.PENDING, 1, 5.0,
            time.time(), time.time(), tenant="acme")


def _scrape(metrics: Metrics) -> str:
    listener = MetricsListener(metrics)
    listener.notify(Event(EventKind.CREATED, TASK, time.time()))
    done = replace(TASK, status=TaskStatus.SUCCESS, started_at=time.time(),
                   finished_at=time.time())
    listener.notify(Event(EventKind.SUCCEEDED, done, time.time()))
    return metrics.render().decode()


def test_off_by_default() -> None:
    assert load_settings().metrics.tenant_label is False
    text = _scrape(Metrics())
    assert 'conveyor_tasks_created_total{type="report"} 1.0' in text
    assert "tenant=" not in text


def test_on_adds_the_tenant_to_every_task_family() -> None:
    text = _scrape(Metrics(tenant_label=True))
    assert 'conveyor_tasks_created_total{tenant="acme",type="report"} 1.0' in text
    assert 'conveyor_tasks_finished_total{status="SUCCESS",tenant="acme",type="report"}' in text
    assert 'conveyor_task_duration_seconds_count{tenant="acme",type="report"} 1.0' in text


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_METRICS__TENANT_LABEL", "true")
    assert load_settings().metrics.tenant_label is True

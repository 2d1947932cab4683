"""``wants_work``: which workers a dispatch pass places work on (pure)."""

from __future__ import annotations

import pytest

from conveyor.models import WorkerInfo
from conveyor.scheduler.planning import wants_work


def worker(load: int, capacity: int = 10, prefetch: int = 10, draining: bool = False) -> WorkerInfo:
    return WorkerInfo(worker_id="w", host="h", pid=1, capacity=capacity, types=(), weight=1.0,
                      load=load, draining=draining, prefetch=prefetch)


@pytest.mark.parametrize(("load", "wanted"), [
    (0, True),  # idle
    (9, True),  # a running slot idle: its buffer is empty
    (15, True),  # half the buffer spent
    (16, False),  # busy, with more than half its buffer still queued
    (20, False),  # full
])
def test_a_busy_worker_is_refilled_once_half_its_buffer_is_spent(load: int, wanted: bool) -> None:
    assert wants_work(worker(load)) is wanted


def test_without_prefetch_any_free_slot_is_filled() -> None:
    assert wants_work(worker(9, prefetch=0))
    assert not wants_work(worker(10, prefetch=0))


def test_a_draining_worker_takes_nothing() -> None:
    assert not wants_work(worker(0, draining=True))

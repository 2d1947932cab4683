"""RQ peer: two ``rq worker`` processes on one queue (RQ's default worker forks a work horse
per job).

Worker (started by the bench): ``rq worker --url $BENCH_REDIS_URL bench`` twice.
"""

from __future__ import annotations

from collections.abc import Callable

from rq import Queue

from peers import _probe

QUEUE = "bench"


def stamp(token: str) -> None:
    _probe.stamp(token)


def noop() -> None:
    _probe.count()


def nap() -> None:
    _probe.nap()


def _queue() -> Queue:
    return Queue(QUEUE, connection=_probe.client())


def submit_stamp(token: str) -> None:
    _queue().enqueue(stamp, token)


def submit_one() -> None:
    _queue().enqueue(noop)


def submit_batch(size: int, func: Callable[[], None] = noop) -> None:
    """``enqueue_many`` on one pipeline: RQ's batch call."""
    queue = _queue()
    with queue.connection.pipeline() as pipe:
        queue.enqueue_many([Queue.prepare_data(func) for _ in range(size)], pipeline=pipe)
        pipe.execute()


def enqueue(kind: str, count: int) -> None:
    for start in range(0, count, 1000):
        submit_batch(min(1000, count - start), nap if kind == "nap" else noop)

"""RQ peer: two ``rq worker`` processes on one queue (RQ's default worker forks a work horse
per job, so the probe writes each task's finish straight to Redis: BENCH_PROBE_DIRECT=1).

Worker (started by the bench): ``rq worker --url $BENCH_REDIS_URL bench`` twice.
"""

from __future__ import annotations

from rq import Queue

from peers import _probe

QUEUE = "bench"


def stamp(token: str) -> None:
    _probe.stamp(token)


def noop() -> None:
    _probe.tick()


def _queue() -> Queue:
    return Queue(QUEUE, connection=_probe.client())


def submit_stamp(token: str) -> None:
    _queue().enqueue(stamp, token)


def enqueue_noops(count: int) -> None:
    queue = _queue()
    for start in range(0, count, 1000):
        size = min(1000, count - start)
        with queue.connection.pipeline() as pipe:
            queue.enqueue_many([Queue.prepare_data(noop) for _ in range(size)], pipeline=pipe)
            pipe.execute()

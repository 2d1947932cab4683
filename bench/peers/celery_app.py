"""Celery peer: Redis broker, no result backend (the peers keep no durable record).

Worker (started by the bench): ``celery -A peers.celery_app worker --pool prefork
--concurrency 2 -O fair`` with ``--prefetch-multiplier 1`` for the latency figure.
"""

from __future__ import annotations

from celery import Celery

from peers import _probe

app = Celery("bench", broker=_probe.REDIS_URL)
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True)


@app.task(name="bench.stamp")
def stamp(token: str) -> None:
    _probe.stamp(token)


@app.task(name="bench.noop")
def noop() -> None:
    _probe.tick()


def submit_stamp(token: str) -> None:
    stamp.apply_async((token,))


def enqueue_noops(count: int) -> None:
    for _ in range(count):
        noop.apply_async()

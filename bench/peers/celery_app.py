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
    _probe.count()


@app.task(name="bench.nap")
def nap() -> None:
    _probe.nap()


def submit_stamp(token: str) -> None:
    stamp.apply_async((token,))


def submit_one() -> None:
    noop.apply_async()


def enqueue(kind: str, count: int) -> None:
    task = nap if kind == "nap" else noop
    for _ in range(count):
        task.apply_async()

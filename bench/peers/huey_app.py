"""Huey peer: ``RedisHuey`` with its defaults (blocking pops, results kept in Redis).

Workers (started by the bench): ``huey_consumer peers.huey_app.huey -k process -w 2`` or
``-k thread -w 2``.
"""

from __future__ import annotations

from huey import RedisHuey

from peers import _probe

huey = RedisHuey("bench", url=_probe.REDIS_URL)


@huey.task()
def stamp(token: str) -> None:
    _probe.stamp(token)


@huey.task()
def noop() -> None:
    _probe.count()


@huey.task()
def nap() -> None:
    _probe.nap()


def submit_stamp(token: str) -> None:
    stamp(token)


def submit_one() -> None:
    noop()


def enqueue(kind: str, count: int) -> None:
    task = nap if kind == "nap" else noop
    for _ in range(count):
        task()

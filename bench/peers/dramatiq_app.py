"""Dramatiq peer: Redis broker, default middleware.

Worker (started by the bench): ``dramatiq peers.dramatiq_app --processes 2`` (8 threads each,
Dramatiq's default).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from peers import _probe

broker = RedisBroker(url=_probe.REDIS_URL)
dramatiq.set_broker(broker)


@dramatiq.actor(max_retries=0)
def stamp(token: str) -> None:
    _probe.stamp(token)


@dramatiq.actor(max_retries=0)
def noop() -> None:
    _probe.count()


@dramatiq.actor(max_retries=0)
def nap() -> None:
    _probe.nap()


def submit_stamp(token: str) -> None:
    stamp.send(token)


def submit_one() -> None:
    noop.send()


def enqueue(kind: str, count: int) -> None:
    actor = nap if kind == "nap" else noop
    for _ in range(count):
        actor.send()

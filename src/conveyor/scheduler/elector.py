"""Elector: hold the scheduler lease, or try to take it.

Leadership is trusted only until ``ttl * 0.8`` after the last successful renewal was *sent*
(a monotonic clock, so wall-clock jumps cannot extend it): a scheduler that cannot renew stops
acting as leader before its lease can run out on the server. The fencing epoch covers what is
left: every scheduling script refuses an epoch that is not the current one. A new lease takes
an epoch above the highest one the store has recorded, so epochs keep rising even when the
coordination backend lost its counter.

Every pass, leader or standby, first announces the scheduler (``lease.announce``, expiring with
the lease TTL), so operators see the standbys ready to take over (``conveyor scheduler
status``); a clean stop withdraws it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from conveyor.coordination.protocol import LeaderLease
from conveyor.duty import Duty, sleep_unless
from conveyor.errors import Conflict
from conveyor.models import Lease
from conveyor.store.protocol import Epochs

log = logging.getLogger(__name__)


TRUST = 0.8


class Elector(Duty):
    name = "elector"

    def __init__(
        self,
        lease: LeaderLease,
        history: Epochs,
        holder: str,
        ttl: float,
        renew_interval: float,
        retry_interval: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(renew_interval)
        # A standby looks for a free lease more often than the leader renews: the failover
        # bound is the lease TTL plus this, and each look is one cheap GET.
        self._retry_interval = renew_interval if retry_interval is None else retry_interval
        self._lease = lease
        self._history = history
        self.holder = holder
        self._ttl = ttl
        self._monotonic = monotonic
        self.current: Lease | None = None
        self._trusted_until = 0.0

    @property
    def epoch(self) -> int | None:
        """The epoch to act under, or None when this scheduler must not act."""
        if self.current is None or self._monotonic() >= self._trusted_until:
            return None
        return self.current.epoch

    async def wait_for_next_pass(self) -> None:
        wait = self.interval if self.current is not None else self._retry_interval
        await sleep_unless(self._stopping, wait * (1 + 0.1 * random.random()))

    async def run_once(self, now: float) -> None:
        sent = self._monotonic()
        await self._lease.announce(self.holder, now, self._ttl)
        held = self.current  # ``demote`` may clear ``current`` while we wait for Redis
        if held is not None:
            if await self._lease.renew(held, self._ttl):
                if self.current == held:
                    self._trusted_until = sent + self._ttl * TRUST
                return
            log.warning("lost the scheduler lease (epoch %d)", held.epoch)
            self.current = None
        if await self._lease.current() is not None:
            return
        acquired = await self._lease.acquire(
            self.holder, self._ttl, await self._history.max_epoch()
        )
        if acquired is None:
            return
        try:  # durable before acting: the floor of every later epoch
            await self._history.record_epoch(acquired.epoch, self.holder, time.time())
        except Conflict as exc:  # the backend reused an epoch; the next try starts above it
            log.warning("%s; giving the lease back", exc)
            await self._lease.release(acquired)
            return
        except BaseException:
            await self._lease.release(acquired)
            raise
        self.current = acquired
        self._trusted_until = sent + self._ttl * TRUST
        log.info("became leader with epoch %d", acquired.epoch)

    def demote(self) -> None:
        """Stop acting at once (a script said our epoch is stale)."""
        if self.current is not None:
            log.warning("epoch %d is stale; stepping down", self.current.epoch)
        self.current = None

    async def stop(self) -> None:
        await super().stop()
        try:
            await self._lease.withdraw(self.holder)
        except Exception as exc:  # the announcement expires on its own
            log.warning("could not withdraw the scheduler's announcement: %s", exc)
        if self.current is not None:
            lease, self.current = self.current, None
            try:
                await self._lease.release(lease)
            except Exception as exc:  # the lease will expire on its own
                log.warning("could not release the lease: %s", exc)

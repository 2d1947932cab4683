"""Redis Sentinel for the distributed tests: a primary, one replica and three Sentinels, each a
``redis-server`` started by the test on loopback ports of the suite's range, and the
``Cluster`` whose processes (and whose own looks) reach Redis through a ``redis+sentinel://``
URL, so they follow the primary the Sentinels name."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.sentinel import Sentinel

from conveyor.coordination.redis.connection import parse_sentinel_url
from tests.distributed.harness import Cluster, RedisServer, wait_until
from tests.support.databases import unavailable

SERVICE = "cvt"
#: Sentinel's timings, as short as it allows: a primary silent for 1 s is down, a failover
#: that stalls is retried after 5 s.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


@dataclass
class SentinelGroup:
    primary: RedisServer
    replica: RedisServer
    sentinels: list[RedisServer]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def master_port(self) -> int:
        """The primary's port as the Sentinels name it now."""
        with redis.Redis(port=self.sentinels[0].port, socket_timeout=1) as r:
            _host, port = r.sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def replicating(self) -> bool:
        """The replica is in sync with the primary (its link up, the offsets equal)."""
        with (redis.Redis(port=self.primary.port, socket_timeout=1) as p,
              redis.Redis(port=self.replica.port, socket_timeout=1) as r):
            info = r.info("replication")
            return bool(info["master_link_status"] == "up"
                        and info["master_repl_offset"] == p.info("replication")
                        ["master_repl_offset"])

    def clients_of(self, port: int) -> list[str]:
        """The names of the clients connected to the server on ``port``."""
        with redis.Redis(port=port, socket_timeout=1, decode_responses=True) as r:
            return [str(c.get("name", "")) for c in r.client_list()]

    def stop(self) -> None:
        for server in (*self.sentinels, self.replica, self.primary):
            server.kill()


@contextlib.contextmanager
def sentinel_group(workdir: Path, first_port: int) -> Iterator[SentinelGroup]:
    """Ports ``first_port`` (primary), +1 (replica), +2..+4 (Sentinels); all killed at the
    end, even after a failure."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server", FileNotFoundError("not installed (scripts/services.sh)"))
    primary = RedisServer(first_port, workdir)
    replica = RedisServer(first_port + 1, workdir,
                          extra=["--replicaof", "127.0.0.1", str(first_port)])
    sentinels = []
    for port in range(first_port + 2, first_port + 5):
        config = workdir / f"sentinel-{port}.conf"  # Sentinel rewrites it: one each
        config.write_text(
            f"sentinel monitor {SERVICE} 127.0.0.1 {first_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        sentinels.append(RedisServer(port, workdir, config=config, extra=["--sentinel"]))
    group = SentinelGroup(primary, replica, sentinels)
    try:
        for server in (primary, replica, *sentinels):
            server.start()
        wait_until(group.replicating, 20, 0.1, "the replica to sync")

        def seen() -> bool:  # every Sentinel knows the replica and the other Sentinels
            for s in sentinels:
                with redis.Redis(port=s.port, socket_timeout=1) as r:
                    state = r.sentinel_master(SERVICE)
                if state["num-slaves"] < 1 or state["num-other-sentinels"] < 2:
                    return False
            return True

        wait_until(seen, 30, 0.2, "the Sentinels to find the replica and each other")
        yield group
    finally:
        group.stop()


@dataclass
class SentinelCluster(Cluster):
    """``redis_url`` is the ``redis+sentinel://`` URL; the test's looks follow it too."""

    def redis(self) -> redis.Redis:
        parsed = parse_sentinel_url(self.redis_url)
        sentinel = Sentinel(parsed.hosts, socket_timeout=1)  # type: ignore[no-untyped-call]
        return sentinel.master_for(parsed.service, db=parsed.db, decode_responses=True,
                                   socket_timeout=2)

"""A cluster whose processes live on hosts of their own (``netns.py``), Redis and the database
on two more, every link between them crossing the bridge.

- **Redis**: a private ``redis-server`` on the "redis" host, bound to its address; the test
  reads it through the unix socket it also opens (no route from the root namespace needed).
- **Database**: a throw-away database on the real MariaDB, reached from the hosts through a
  relay on the "db" host that listens on that host's address and passes bytes to MariaDB's
  unix socket. A MariaDB or PostgreSQL server of its own per test would cost seconds and
  hundreds of MB on a 2-core machine for nothing the tests look at: what matters is that the
  database sits behind a link that can be cut, and the relay host is that link. The test's
  own SQL checks go straight to 127.0.0.1.
- **API**: on its host's address; the test reaches it through a relay on a loopback port of
  21600-21699 that connects inside the API's namespace.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
import sqlalchemy as sa

from tests.distributed.harness import Cluster, Proc, database, wait_until
from tests.hosts.netns import Host, Network, network
from tests.support.processes import conveyor_command

RELAY = (sys.executable, str(Path(__file__).with_name("relay.py")))
LOOPBACK_PORTS = range(21600, 21700)
API_PORT = 8080
REDIS_PORT = 6379
DB_PORT = 3306


def loopback_port(taken: set[int]) -> int:
    """A free loopback port in this suite's range, not in ``taken`` (handed out already, maybe
    not bound yet); added to it."""
    for port in LOOPBACK_PORTS:
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise AssertionError("no free loopback port in 21600-21699")


@dataclass
class HostsCluster(Cluster):
    net: Network | None = None
    placed: dict[str, Host] = field(default_factory=dict)  # process name -> its host
    ports: set[int] = field(default_factory=set)  # loopback ports handed to relays

    @property
    def network(self) -> Network:
        assert self.net is not None
        return self.net

    def host_of(self, proc: Proc) -> Host:
        return self.placed[proc.name]

    def start_on(self, host: Host, name: str, *args: str,
                 command: Sequence[str] | None = None, **env: str) -> Proc:
        """``conveyor ARGS`` (or ``command`` ARGS) inside ``host``."""
        proc = self.start(name, *args, command=host.command(command or [conveyor_command()]),
                          **env)
        self.placed[name] = host
        return proc

    def relay(self, name: str, listen: str, target: str, *, on: Host | None = None,
              into: Host | None = None) -> Proc:
        """A relay process listening in ``on`` (the root namespace when None), connecting
        inside ``into``."""
        args = [listen, target, *(["--netns", into.netns] if into else [])]
        if on is None:
            return self.start(name, *args, command=RELAY)
        return self.start_on(on, name, *args, command=RELAY)

    # -- the shared services ---------------------------------------------------------------

    def services(self) -> None:
        """Redis on the "redis" host, the database relay on the "db" host."""
        net = self.network
        sock = self.tmp_path / "redis.sock"
        self.start_on(net["redis"], "redis-server", "--port", str(REDIS_PORT),
                      "--bind", net["redis"].address, "--unixsocket", str(sock),
                      "--unixsocketperm", "700", "--protected-mode", "no", "--save", "",
                      "--appendonly", "no",
                      command=["redis-server"])
        mariadb = str(self.db.scalar("SELECT @@socket"))
        self.relay("db-relay", f"tcp:{net['db'].address}:{DB_PORT}", f"unix:{mariadb}",
                   on=net["db"])
        url = sa.make_url(self.db.url).set(host=net["db"].address, port=DB_PORT)
        self.extra_env.update(
            CONVEYOR_DATABASE_URL=url.render_as_string(hide_password=False),
            CONVEYOR_REDIS_URL=f"redis://{net['redis'].address}:{REDIS_PORT}/0",
        )

        def answers() -> bool:
            self.check_alive()
            try:
                with self.redis() as r:
                    return bool(r.ping())
            except redis.RedisError:
                return False

        wait_until(answers, 15, 0.05, "redis-server on its host")

    def migrate(self) -> None:
        """``conveyor migrate`` from the "db" host, through the relay like every process."""
        proc = self.start_on(self.network["db"], "migrate", "migrate")
        code = proc.popen.wait(60)
        self.procs.remove(proc)
        assert code == 0, proc.output()

    # -- the roles -------------------------------------------------------------------------

    def expose(self, host: Host, port: int) -> str:
        """A loopback URL for ``host:port``, through a relay into the host."""
        local = loopback_port(self.ports)
        self.relay(f"relay-{host.name}-{port}", f"tcp:127.0.0.1:{local}",
                   f"tcp:{host.address}:{port}", into=host)
        return f"http://127.0.0.1:{local}"

    def api_on(self, host: Host, wait: bool = True) -> Proc:
        n = sum(p.name.startswith("api") for p in self.procs)
        proc = self.start_on(host, f"api-{n}", "api", "--host", host.address,
                             "--port", str(API_PORT))
        self.url = self.expose(host, API_PORT)
        if wait:
            self.wait_api()
        return proc

    def scheduler_on(self, host: Host, **env: str) -> Proc:
        n = sum(p.name.startswith("scheduler") for p in self.procs)
        return self.start_on(host, f"scheduler-{n}", "scheduler", **env)

    def worker_on(self, host: Host, capacity: int = 10, **env: str) -> Proc:
        n = sum(p.name.startswith("worker") for p in self.procs)
        return self.start_on(host, f"worker-{n}", "worker", "--capacity", str(capacity), **env)


@contextlib.contextmanager
def fleet(tmp_path: Path, hosts: Sequence[str], *, fast: bool = True, migrate: bool = True,
          **env: str) -> Iterator[HostsCluster]:
    """Hosts named ``hosts`` plus "redis" and "db", a throw-away database (migrated unless
    ``migrate`` is False); every process killed and every namespace removed at the end."""
    with network() as net, database("mariadb", tmp_path) as db:
        for name in ("redis", "db", *hosts):
            net.add(name)
        c = HostsCluster(tmp_path, db, f"unix://{tmp_path / 'redis.sock'}?db=0",
                         extra_env=dict(env), fast=fast, net=net)
        try:
            c.services()
            if migrate:
                c.migrate()
            yield c
        except BaseException:
            c.report()
            raise
        finally:
            c.shutdown()

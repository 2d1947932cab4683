"""Opening the etcd backend: the URL, the gRPC channel (several endpoints, TLS, auth) and
``connect_etcd``, which assembles the five parts over one client.

URLs accepted::

    etcd://[user:password@]host[:port][,host[:port]...]     plain gRPC, port 2379 by default
    etcds://[user:password@]host[:port][,...][?ca=PATH&cert=PATH&key=PATH]   TLS

Several endpoints become one gRPC channel over all their addresses (pick-first: the next
member is tried when one is down), resolved once when the backend opens.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import grpc

from conveyor.coordination.etcd.client import EtcdClient
from conveyor.coordination.etcd.layout import Layout
from conveyor.coordination.etcd.lease import EtcdCancelSignals, EtcdLeaderLease
from conveyor.coordination.etcd.queues import EtcdTaskQueues
from conveyor.coordination.etcd.workers import EtcdRegistry, EtcdWorkerQueues
from conveyor.coordination.protocol import Coordination
from conveyor.errors import BackendUnavailable, ConfigError

DEFAULT_PORT = 2379
SCHEMES = ("etcd://", "etcds://")


@dataclass(frozen=True, slots=True)
class EtcdUrl:
    endpoints: list[tuple[str, int]]
    tls: bool = False
    username: str | None = None
    password: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # ca / cert / key paths


def is_etcd_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(SCHEMES)


def parse_etcd_url(url: str) -> EtcdUrl:
    parts = urlsplit(url)
    if parts.scheme not in ("etcd", "etcds"):
        raise ConfigError(f"an etcd URL starts with etcd:// or etcds://, not {url.split(':')[0]}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    if not hosts:
        raise ConfigError("an etcd URL names at least one endpoint: etcd://host:port")
    endpoints = []
    for text in hosts.split(","):
        host, sep, port = text.rpartition(":")
        if not sep or "]" in port:  # no port given (``host`` or ``[v6]``)
            host, port = text, str(DEFAULT_PORT)
        if not port.isdigit() or not host:
            raise ConfigError(f"etcd endpoint {text!r} is not host:port")
        endpoints.append((host.strip("[]"), int(port)))
    user, _, password = userinfo.partition(":")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"ca", "cert", "key"}
    if unknown:
        raise ConfigError(f"unknown etcd URL options: {', '.join(sorted(unknown))}")
    return EtcdUrl(endpoints, parts.scheme == "etcds", unquote(user) or None,
                   unquote(password) or None, query)


def target(endpoints: list[tuple[str, int]]) -> str:
    """One gRPC target for every endpoint's addresses: ``ipv4:a:p,b:p`` (or ``ipv6:``)."""
    if len(endpoints) == 1:
        host, port = endpoints[0]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    v4: list[tuple[str, int]] = []
    v6: list[tuple[str, int]] = []
    for host, port in endpoints:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise BackendUnavailable(f"cannot resolve etcd endpoint {host}: {exc}") from exc
        for family, _, _, _, address in infos:
            (v4 if family == socket.AF_INET else v6).append((str(address[0]), port))
    if v4:
        return "ipv4:" + ",".join(f"{h}:{p}" for h, p in dict.fromkeys(v4))
    return "ipv6:" + ",".join(f"[{h}]:{p}" for h, p in dict.fromkeys(v6))


def open_channel(parsed: EtcdUrl) -> grpc.aio.Channel:
    where = target(parsed.endpoints)
    if not parsed.tls:
        return grpc.aio.insecure_channel(where)

    def read(name: str) -> bytes | None:
        path = parsed.files.get(name)
        return Path(path).read_bytes() if path else None

    creds = grpc.ssl_channel_credentials(read("ca"), read("key"), read("cert"))
    options = [("grpc.ssl_target_name_override", parsed.endpoints[0][0])]
    return grpc.aio.secure_channel(where, creds, options=options)


class EtcdCoordination:
    """The five etcd parts over one client, closed together."""

    def __init__(self, client: EtcdClient, layout: Layout, clock: Callable[[], float]) -> None:
        self.client = client
        self.queues = EtcdTaskQueues(client, layout, clock)
        self.worker_queues = EtcdWorkerQueues(client, layout, clock)
        self.registry = EtcdRegistry(client, layout, clock)
        self.lease = EtcdLeaderLease(client, layout, clock)
        self.cancels = EtcdCancelSignals(client, layout, clock)

    def as_coordination(self) -> Coordination:
        return Coordination(
            self.queues, self.worker_queues, self.registry, self.lease, self.cancels, self
        )

    async def close(self) -> None:
        await self.client.close()


async def connect_etcd(
    url: str, prefix: str = "conveyor:", *, clock: Callable[[], float] = time.time,
    leader_key: str = "scheduler:leader",
) -> Coordination:
    """Open ``url`` (forms in the module docstring), check etcd answers, build the backend.
    Keys live under ``prefix``; ``leader_key`` names the lease (``scheduler.leader_lock_key``)."""
    parsed = parse_etcd_url(url)
    client = EtcdClient(open_channel(parsed))
    try:
        if parsed.username is not None:
            await client.authenticate(parsed.username, parsed.password or "")
        await client.get(prefix.encode())
    except BackendUnavailable:
        await client.close()
        raise
    except grpc.aio.AioRpcError as exc:  # bad credentials, none where auth is on, no access
        await client.close()
        raise ConfigError(f"etcd refused Conveyor: {exc.details()}") from exc
    return EtcdCoordination(client, Layout(prefix, leader_key), clock).as_coordination()

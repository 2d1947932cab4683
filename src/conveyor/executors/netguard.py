"""Outbound address guard: a task must never be a way into internal services (docs/design.md §8.10).

Every outbound call Conveyor makes on behalf of a task or a caller (the HTTP and gRPC executors,
webhook callbacks) resolves its target first and checks *every* address the name resolves to.
A target is refused when any of them is private, loopback, link-local, multicast, reserved,
unspecified or otherwise not globally routable, unless the operator allowed it in
``http_executor.allowed_hosts`` (env ``CONVEYOR_HTTP_ALLOWED_HOSTS``): an entry is a host name
(matched exactly, case-insensitively; ``.example.com`` also matches its sub-domains), an IP
address or a CIDR block.

IPv6 addresses that carry an IPv4 address (``::ffff:a.b.c.d``, 6to4, Teredo) are judged by the
IPv4 address they reach, so ``::ffff:127.0.0.1`` is loopback here too.

``check_address`` and ``Allowlist`` are pure; ``resolve_checked`` adds the one DNS look-up. The
caller should connect to an address it got back (not resolve the name again) so that a DNS
answer that changes between the check and the connection (rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from conveyor.errors import PermanentError, RetryableError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressNotAllowed(PermanentError):
    """The target resolves to an address outside the allowlist; retrying cannot change that."""


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Operator-approved exceptions to the public-address rule."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """Split setting entries into host names and networks (an IP is a /32 or /128)."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        """True when the host name itself was allowed, whatever it resolves to."""
        name = host.lower().rstrip(".")
        if name in self.hosts:
            return True
        return any(entry.startswith(".") and name.endswith(entry) for entry in self.hosts)

    def allows_ip(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address tunnels to, if it is one of the well-known forms."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address (the only kind reachable by default)."""
    inner = _embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def check_address(host: str, address: IPAddress, allowlist: Allowlist) -> None:
    """Raise ``AddressNotAllowed`` unless ``host`` may be reached at ``address``."""
    if is_public(address) or allowlist.allows_host(host) or allowlist.allows_ip(address):
        return
    inner = _embedded_ipv4(address)
    if inner is not None and allowlist.allows_ip(inner):
        return
    raise AddressNotAllowed(
        f"refusing to connect to {host!r}: it resolves to {address}, which is not a public "
        "address; add the host or a CIDR to http_executor.allowed_hosts "
        "(CONVEYOR_HTTP_ALLOWED_HOSTS) if this target is intended"
    )


def parse_ip(text: str) -> IPAddress | None:
    """The IP address written in ``text`` (brackets and an IPv6 zone allowed), else None."""
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


async def resolve_checked(host: str, port: int, allowlist: Allowlist) -> list[IPAddress]:
    """Resolve ``host`` and check every address; return them in resolver order.

    A name that does not resolve raises ``RetryableError``: DNS failures are usually transient.
    """
    if not host:
        raise PermanentError("the target has no host")
    literal = parse_ip(host)
    if literal is not None:
        check_address(host, literal, allowlist)
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RetryableError(f"cannot resolve {host!r}: {exc}") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = parse_ip(str(sockaddr[0]))
        if address is None:
            raise AddressNotAllowed(f"{host!r} resolved to an unusable address {sockaddr[0]!r}")
        check_address(host, address, allowlist)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise RetryableError(f"{host!r} resolved to no address")
    return addresses

"""Hosts on one machine: network namespaces joined by a bridge, for tests across addresses.

``network(count)`` makes a "switch" namespace holding a bridge and ``count`` host namespaces,
each with one veth cable (``eth0`` in the host, ``hN`` on the bridge) and one address of a
private /24 chosen at random and checked unused in every namespace on this machine. The root
namespace gets nothing: the test reaches a host only through a relay (``relay.py``) or a unix
socket, so only the harness's own namespaces and loopback are ever addressed.

Cutting a host pulls its cable at the switch (``ip link set hN down``): the host keeps its
address and its processes, but nothing it sends arrives, as with a dead switch port.

Everything is removed when the block ends, even after a failure; a run killed before that is
swept by the next one: each network writes its owner's pid under ``/run/conveyor-netns``, and a
``cv-*`` namespace whose owner is gone is deleted at the start of every network.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

OWNERS = Path("/run/conveyor-netns")
NETNS_ETC = Path("/etc/netns")
PREFIX = "cv-"


def ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Host:
    """One namespace with one address; ``command`` prefixes a command to run inside it."""

    name: str  # the role given by the test: "redis", "scheduler-1", ...
    netns: str
    address: str
    port: str  # the bridge port of its cable, in the switch namespace

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]


@dataclass
class Network:
    tag: str  # "cv-<random>"
    subnet: str  # "10.X.Y"
    switch: str
    hosts: dict[str, Host] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def add(self, name: str) -> Host:
        n = len(self.hosts) + 1
        host = Host(name, f"{self.tag}-{n}", f"{self.subnet}.{n}", f"h{n}")
        ip("netns", "add", host.netns)
        ip("link", "add", "eth0", "netns", host.netns, "type", "veth",
           "peer", "name", host.port, "netns", self.switch)
        ip("-n", self.switch, "link", "set", host.port, "master", "br0")
        ip("-n", self.switch, "link", "set", host.port, "up")
        ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", host.netns, "link", "set", "eth0", "up")
        ip("-n", host.netns, "link", "set", "lo", "up")
        self.hosts[name] = host
        return host

    def names(self, mapping: dict[str, str]) -> None:
        """Give every host an ``/etc/hosts`` naming others (``ip netns exec`` mounts
        ``/etc/netns/NS/hosts`` over it), as a container network's DNS would."""
        text = "127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for n, a in mapping.items())
        for host in self.hosts.values():
            folder = NETNS_ETC / host.netns
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "hosts").write_text(text)

    def cut(self, host: Host) -> float:
        """Pull the host's cable; the time it happened."""
        ip("-n", self.switch, "link", "set", host.port, "down")
        return time.time()

    def mend(self, host: Host) -> float:
        ip("-n", self.switch, "link", "set", host.port, "up")
        return time.time()

    def remove(self) -> None:
        for host in self.hosts.values():
            _kill_inside(host.netns)
            ip("netns", "del", host.netns, check=False)
            shutil.rmtree(NETNS_ETC / host.netns, ignore_errors=True)
        ip("netns", "del", self.switch, check=False)
        with contextlib.suppress(FileNotFoundError):
            (OWNERS / self.tag).unlink()


def _kill_inside(netns: str) -> None:
    """Kill what still runs in a namespace, so deleting it frees the addresses at once."""
    for pid in ip("netns", "pids", netns, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)


def namespaces() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list", check=False).splitlines() if line]


def sweep() -> None:
    """Delete the ``cv-*`` namespaces left by runs whose owner process is gone."""
    for netns in namespaces():
        match = re.fullmatch(r"(cv-[0-9a-f]+)-(\w+)", netns)
        if not match:
            continue
        owner = OWNERS / match.group(1)
        try:
            alive = Path(f"/proc/{int(owner.read_text())}").exists()
        except (OSError, ValueError):
            alive = False
        if not alive:
            _kill_inside(netns)
            ip("netns", "del", netns, check=False)
            shutil.rmtree(NETNS_ETC / netns, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                owner.unlink()


def used_subnets() -> set[str]:
    """The 10.X.Y prefixes of every IPv4 address here, in the root and every namespace."""
    texts = [ip("-o", "-4", "addr", check=False)]
    texts += [ip("-n", ns, "-o", "-4", "addr", check=False) for ns in namespaces()]
    return set(re.findall(r"inet (10\.\d+\.\d+)\.\d+", "\n".join(texts)))


def unavailable(why: str) -> None:
    """No namespaces here: fail under CI, skip on a laptop without root."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"network namespaces cannot be made: {why}")
    pytest.skip(f"network namespaces cannot be made: {why}")


@contextlib.contextmanager
def network() -> Iterator[Network]:
    """A switch and no hosts yet (``Network.add``); all of it removed at the end."""
    if shutil.which("ip") is None:
        unavailable("iproute2 is not installed (scripts/setup.sh installs it)")
    sweep()
    rng = random.SystemRandom()
    used = used_subnets()
    subnet = next(s for s in (f"10.{rng.randrange(100, 250)}.{rng.randrange(1, 255)}"
                              for _ in range(100)) if s not in used)
    tag = f"{PREFIX}{rng.randrange(16**6):06x}"
    net = Network(tag, subnet, f"{tag}-sw")
    try:
        OWNERS.mkdir(parents=True, exist_ok=True)
        (OWNERS / tag).write_text(str(os.getpid()))
        ip("netns", "add", net.switch)
    except (OSError, RuntimeError) as exc:
        with contextlib.suppress(FileNotFoundError):
            (OWNERS / tag).unlink()
        unavailable(str(exc))
    try:
        ip("-n", net.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", net.switch, "link", "set", "br0", "up")
        yield net
    finally:
        net.remove()

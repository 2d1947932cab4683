"""etcd URLs and the choice of backend by URL (pure parsing; no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.bootstrap import coordination
from conveyor.config import load_settings
from conveyor.coordination.etcd.connection import parse_etcd_url, target
from conveyor.coordination.etcd.layout import Layout
from conveyor.errors import ConfigError


def test_one_endpoint_with_the_default_port() -> None:
    parsed = parse_etcd_url("etcd://10.0.0.5")
    assert parsed.endpoints == [("10.0.0.5", 2379)]
    assert not parsed.tls and parsed.username is None


def test_several_endpoints_auth_and_tls_files() -> None:
    parsed = parse_etcd_url("etcds://app:s%40cret@a:1,b:2,[::1]:3?ca=/ca.pem&cert=/c&key=/k")
    assert parsed.endpoints == [("a", 1), ("b", 2), ("::1", 3)]
    assert parsed.tls
    assert (parsed.username, parsed.password) == ("app", "s@cret")
    assert parsed.files == {"ca": "/ca.pem", "cert": "/c", "key": "/k"}


def test_several_addresses_become_one_pick_first_target() -> None:
    assert target([("127.0.0.1", 1), ("127.0.0.1", 2)]) == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert target([("localhost", 2379)]) == "localhost:2379"


@pytest.mark.parametrize(
    ("url", "reason"),
    [("redis://x", "etcd://"), ("etcd://", "endpoint"), ("etcd://h:port", "host:port"),
     ("etcd://h:1?tls=1", "unknown etcd URL options: tls")],
)
def test_bad_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        parse_etcd_url(url)


async def test_an_unknown_coordination_scheme_is_refused(tmp_path: Path) -> None:
    settings = load_settings(database_url=str(tmp_path / "c.db"), coordination_url="zk://x")
    with pytest.raises(ConfigError, match=r"etcd:// or etcds://, not zk://"):
        await coordination(settings, standalone=False)


def test_keys_quote_what_could_look_like_a_separator() -> None:
    layout = Layout("p:")
    assert layout.paused("a/b") == b"p:paused/a%2Fb"
    first, second = layout.seq(), layout.seq()
    assert len(first) == len(second) == 20 and first < second
    assert layout.delayed(5.0) < layout.delayed_until(5.0) < layout.delayed(5.000001)

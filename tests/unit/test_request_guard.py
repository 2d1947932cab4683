"""The pure parts of the HTTP guards: which hosts are served, which settings are refused, how
the connection cap follows the open-file limit."""

from __future__ import annotations

import resource

import pytest

from conveyor.api.guard import LOOPBACK_NAMES, has_body, served_hosts
from conveyor.config import ServerSettings, load_settings
from conveyor.errors import ConfigError
from conveyor.serving import RESERVED_FILES, connection_cap, raise_open_file_limit


def test_loopback_names_and_the_bound_address_are_served_by_default() -> None:
    server = ServerSettings()
    assert served_hosts(server, "127.0.0.1") == LOOPBACK_NAMES
    assert served_hosts(server, "0.0.0.0") == LOOPBACK_NAMES  # a wildcard names no host
    assert served_hosts(server, "::") == LOOPBACK_NAMES
    assert served_hosts(server, "10.1.2.3") == LOOPBACK_NAMES | {"10.1.2.3"}
    assert served_hosts(server, "[fd00::1]") == LOOPBACK_NAMES | {"fd00::1"}


def test_allowed_hosts_replace_the_default_and_star_accepts_all() -> None:
    listed = load_settings(server={"allowed_hosts": "Conveyor.Example.com, api.internal:8080"})
    assert served_hosts(listed.server, "0.0.0.0") == {"conveyor.example.com", "api.internal"}
    assert served_hosts(ServerSettings(allowed_hosts=("*",)), "0.0.0.0") is None


def test_body_detection_follows_the_framing_headers() -> None:
    assert not has_body({})
    assert not has_body({b"content-length": b"0"})
    assert has_body({b"content-length": b"12"})
    assert has_body({b"transfer-encoding": b"chunked"})


@pytest.mark.parametrize("bad", [
    {"metrics_scrapers": "10.0.0.0/33"},
    {"metrics_scrapers": "prometheus.internal"},
    {"allowed_origins": "console.example.com"},
    {"allowed_origins": "https://console.example.com/app"},
    {"header_timeout": 0},
    {"max_connections": 1},
])
def test_bad_server_settings_name_the_setting(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=f"server.{next(iter(bad))}"):
        load_settings(server=bad)


def test_origins_are_normalised() -> None:
    server = ServerSettings(allowed_origins=("HTTPS://Console.Example.com/",))
    assert server.allowed_origins == ("https://console.example.com",)


def test_connection_cap_leaves_room_for_the_process_own_files() -> None:
    assert connection_cap(4096, 1_048_576) == 4096
    assert connection_cap(4096, 1024) == 1024 - RESERVED_FILES
    assert connection_cap(10, 100) == 2


def test_open_file_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        assert raise_open_file_limit() == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == (
            hard if hard != resource.RLIM_INFINITY else max(256, 1_048_576))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

"""The outbound address guard: which addresses a task may reach (docs/design.md §8.10)."""

from __future__ import annotations

import ipaddress

import pytest

from conveyor.errors import PermanentError
from conveyor.executors.netguard import (
    AddressNotAllowed,
    Allowlist,
    check_address,
    is_public,
    parse_ip,
    resolve_checked,
)

NONE = Allowlist()


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "64:ff9b::7f00:1",
    ],
)
def test_internal_addresses_are_not_public(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert not is_public(address)
    with pytest.raises(AddressNotAllowed, match="not a public address"):
        check_address("target", address, NONE)


@pytest.mark.parametrize("text", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"])
def test_public_addresses_pass(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert is_public(address)
    check_address("target", address, NONE)


def test_refusal_is_permanent_and_names_the_setting() -> None:
    with pytest.raises(PermanentError, match="allowed_hosts"):
        check_address("metadata", ipaddress.ip_address("169.254.169.254"), NONE)


def test_allowlist_parses_hosts_ips_and_cidrs() -> None:
    allow = Allowlist.parse(["127.0.0.1", " 10.0.0.0/8 ", "Internal.Example.", "[::1]", ""])
    assert allow.hosts == frozenset({"internal.example"})
    assert {str(n) for n in allow.networks} == {"127.0.0.1/32", "10.0.0.0/8", "::1/128"}


def test_allowed_ip_and_cidr() -> None:
    allow = Allowlist.parse(["127.0.0.1", "10.0.0.0/8"])
    check_address("x", ipaddress.ip_address("127.0.0.1"), allow)
    check_address("x", ipaddress.ip_address("10.200.0.7"), allow)
    with pytest.raises(AddressNotAllowed):
        check_address("x", ipaddress.ip_address("127.0.0.2"), allow)
    with pytest.raises(AddressNotAllowed):
        check_address("x", ipaddress.ip_address("169.254.169.254"), allow)


def test_allowed_ipv4_also_allows_its_mapped_ipv6_form() -> None:
    allow = Allowlist.parse(["127.0.0.1"])
    check_address("x", ipaddress.ip_address("::ffff:127.0.0.1"), allow)


def test_allowed_host_name_and_subdomains() -> None:
    allow = Allowlist.parse(["svc.internal", ".corp.example"])
    loopback = ipaddress.ip_address("10.0.0.5")
    check_address("SVC.internal", loopback, allow)
    check_address("api.corp.example", loopback, allow)
    with pytest.raises(AddressNotAllowed):
        check_address("other.internal", loopback, allow)
    with pytest.raises(AddressNotAllowed):
        check_address("corp.example.evil", loopback, allow)


def test_parse_ip() -> None:
    assert parse_ip("[::1]") == ipaddress.ip_address("::1")
    assert parse_ip("fe80::1%eth0") == ipaddress.ip_address("fe80::1")
    assert parse_ip("example.com") is None


async def test_resolve_checked_refuses_loopback_names() -> None:
    with pytest.raises(AddressNotAllowed):
        await resolve_checked("localhost", 80, NONE)
    with pytest.raises(AddressNotAllowed):
        await resolve_checked("169.254.169.254", 80, NONE)


async def test_resolve_checked_allows_configured_targets() -> None:
    assert await resolve_checked("127.0.0.1", 80, Allowlist.parse(["127.0.0.1"])) == [
        ipaddress.ip_address("127.0.0.1")
    ]
    addresses = await resolve_checked("localhost", 80, Allowlist.parse(["localhost"]))
    assert addresses and all(a.is_loopback for a in addresses)


async def test_resolve_checked_needs_a_host() -> None:
    with pytest.raises(PermanentError):
        await resolve_checked("", 80, NONE)

"""Which addresses may receive webhooks: the policy as a table, without a socket or database."""

from __future__ import annotations

import ipaddress

import pytest

from postroom.webhooks.targets import (
    TargetLookupError,
    TargetRefusedError,
    address_refusal,
    target_addresses,
)
from tests.webhooks.conftest import ScriptedResolver

# address -> (what it is, refused even when the endpoint allows internal addresses)
REFUSED = {
    "127.0.0.1": ("a loopback address", False),
    "127.45.6.7": ("a loopback address", False),
    "::1": ("a loopback address", False),
    "10.1.2.3": ("a private network address", False),
    "172.16.0.1": ("a private network address", False),
    "192.168.1.1": ("a private network address", False),
    "fd12:3456::1": ("a private network address", False),
    "fec0::1": ("a private network address", False),  # site-local, deprecated
    "100.64.0.1": ("a shared (carrier-grade NAT) address", False),
    "100.100.100.200": ("a shared (carrier-grade NAT) address", False),  # Alibaba metadata
    "192.0.2.10": ("a special-purpose address", False),  # documentation
    "198.18.0.1": ("a special-purpose address", False),  # benchmarking
    "::ffff:127.0.0.1": ("the IPv6 form of 127.0.0.1, a loopback address", False),
    "::ffff:10.0.0.1": ("the IPv6 form of 10.0.0.1, a private network address", False),
    "64:ff9b::7f00:1": ("the IPv6 form of 127.0.0.1, a loopback address", False),  # NAT64
    "2002:7f00:1::1": ("the IPv6 form of 127.0.0.1, a loopback address", False),  # 6to4
    "::7f00:1": ("a reserved address", True),  # IPv4-compatible, deprecated
    "0.0.0.0": ("an unspecified address", True),
    "0.1.2.3": ("an unspecified address", True),
    "::": ("an unspecified address", True),
    "169.254.169.254": ("a link-local address", True),
    "fe80::1": ("a link-local address", True),
    "::ffff:169.254.169.254": ("the IPv6 form of 169.254.169.254, a link-local", True),
    "224.0.0.1": ("a multicast address", True),
    "ff02::1": ("a multicast address", True),
    "255.255.255.255": ("a reserved address", True),
    "240.0.0.1": ("a reserved address", True),
}
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:93.184.215.14"]


@pytest.mark.parametrize("text", REFUSED)
def test_an_address_off_the_public_internet_is_refused(text: str) -> None:
    kind, is_always = REFUSED[text]
    refusal = address_refusal(ipaddress.ip_address(text), is_internal_allowed=False)
    assert refusal is not None
    assert refusal.kind.startswith(kind)
    assert refusal.is_always is is_always


@pytest.mark.parametrize("text", REFUSED)
def test_allowing_internal_addresses_opens_all_but_the_unusable_and_link_local(text: str) -> None:
    _, is_always = REFUSED[text]
    refusal = address_refusal(ipaddress.ip_address(text), is_internal_allowed=True)
    assert (refusal is not None) is is_always


@pytest.mark.parametrize("text", PUBLIC)
def test_a_public_address_is_accepted(text: str) -> None:
    assert address_refusal(ipaddress.ip_address(text), is_internal_allowed=False) is None


def test_an_ip_literal_is_checked_without_a_lookup() -> None:
    resolver = ScriptedResolver(["93.184.215.14"])
    with pytest.raises(TargetRefusedError, match=r"^::1 is a loopback address"):
        target_addresses("[::1]", 80, is_internal_allowed=False, resolve=resolver)
    assert resolver.questions == []


def test_a_name_is_looked_up_once_and_every_answer_is_returned_checked() -> None:
    resolver = ScriptedResolver(["93.184.215.14", "2606:4700::1111"], ["127.0.0.1"])
    addresses = target_addresses("hooks.example", 443, is_internal_allowed=False, resolve=resolver)
    assert [str(address) for address in addresses] == ["93.184.215.14", "2606:4700::1111"]
    assert resolver.questions == [("hooks.example", 443)]


def test_a_refusal_names_the_host_the_address_and_the_way_out() -> None:
    resolver = ScriptedResolver(["93.184.215.14", "192.168.0.9"])
    with pytest.raises(TargetRefusedError) as refused:
        target_addresses("erp.example", 80, is_internal_allowed=False, resolve=resolver)
    message = refused.value.message
    assert message.startswith("erp.example resolves to 192.168.0.9, a private network address")
    assert "tick “Allow an internal address”" in message
    assert refused.value.field == "url"


def test_a_name_that_does_not_resolve_is_a_lookup_error_not_a_refusal() -> None:
    def no_such_name(host: str, port: int) -> list[ipaddress.IPv4Address]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(TargetLookupError, match="Could not look up nowhere.invalid"):
        target_addresses("nowhere.invalid", 80, is_internal_allowed=False, resolve=no_such_name)

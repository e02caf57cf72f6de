"""Which address a login comes from: the connection's, unless a trusted proxy says otherwise."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from django.core.exceptions import ImproperlyConfigured

from postroom.accounts.client_address import client_address_from, trusted_proxy_networks

PROXIES = [ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8")]


def test_without_trusted_proxies_the_connection_address_is_the_client() -> None:
    assert client_address_from("203.0.113.7", "198.51.100.1", trusted=[]) == "203.0.113.7"


def test_a_forwarded_for_header_from_an_untrusted_connection_is_ignored() -> None:
    assert client_address_from("203.0.113.7", "198.51.100.1", trusted=PROXIES) == "203.0.113.7"


def test_behind_a_trusted_proxy_the_address_it_saw_is_the_client() -> None:
    assert client_address_from("127.0.0.1", "198.51.100.1", trusted=PROXIES) == "198.51.100.1"


def test_what_the_client_wrote_before_the_proxy_added_its_own_is_ignored() -> None:
    # A client sends "X-Forwarded-For: 192.0.2.99" hoping to be counted as someone else;
    # the proxy appends the address it really saw. Only that last one is believed.
    forwarded = "192.0.2.99, 198.51.100.1"
    assert client_address_from("127.0.0.1", forwarded, trusted=PROXIES) == "198.51.100.1"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    forwarded = "192.0.2.99, 198.51.100.1, 10.2.3.4"
    assert client_address_from("127.0.0.1", forwarded, trusted=PROXIES) == "198.51.100.1"


def test_a_malformed_hop_falls_back_to_the_proxy_so_its_clients_share_one_count() -> None:
    assert client_address_from("127.0.0.1", "not-an-address", trusted=PROXIES) == "127.0.0.1"
    assert client_address_from("127.0.0.1", "", trusted=PROXIES) == "127.0.0.1"


def test_only_trusted_hops_means_the_first_one_is_the_client() -> None:
    assert client_address_from("127.0.0.1", "10.0.0.5, 10.0.0.6", trusted=PROXIES) == "10.0.0.5"


def test_no_connection_address_gives_none() -> None:
    assert client_address_from(None, "198.51.100.1", trusted=PROXIES) is None


def test_trusted_proxies_are_addresses_or_networks() -> None:
    networks = trusted_proxy_networks(["127.0.0.1", "10.0.0.0/8", "::1"])
    assert [str(network) for network in networks] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]


def test_a_bad_trusted_proxy_names_the_variable() -> None:
    with pytest.raises(ImproperlyConfigured, match="POSTROOM_TRUSTED_PROXIES"):
        trusted_proxy_networks(["nginx.internal"])

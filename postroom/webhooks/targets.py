"""Where a webhook may be posted: only to addresses on the public internet, unless allowed.

An endpoint's URL is typed by an administrator, but the request leaves from the Postroom
server, inside the company network: a URL naming 127.0.0.1, a private address or the cloud
metadata service (169.254.169.254) would make Postroom post to services that are not meant
to be reachable from outside and show what they answer (server-side request forgery). So
the host is resolved and every address it gives is checked, at save time and again at each
connection (`postroom.webhooks.transport` connects to exactly the addresses checked here).

`address_refusal` is pure; `target_addresses` adds the lookup, through a `Resolve` function
that tests replace to play a DNS server that changes its answer.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from postroom.core.errors import PostroomError, ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Sequence[IPAddress]]

ALLOW_INTERNAL_LABEL = "Allow an internal address"

# Ranges named outright rather than left to `is_private`/`is_global`, whose tables changed
# between Python versions (3.11.7 calls multicast and fec0::/10 "global").
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # RFC 791: "this host on this network"
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598: carrier-grade NAT
_PRIVATE = tuple(
    ipaddress.ip_network(network)
    for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")  # RFC 1918/4193
)
# RFC 6052 §2.1 well-known NAT64 prefix: the last 32 bits are an IPv4 address a NAT64
# gateway connects to on our behalf.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Refusal:
    """Why an address may not receive webhooks."""

    address: IPAddress
    kind: str  # completes "127.0.0.1 is …"
    is_always: bool  # refused even when the endpoint allows internal addresses


@dataclass(frozen=True)
class _Rule:
    applies: Callable[[IPAddress], bool]
    kind: str
    is_always: bool


# First match wins, so the order matters: ::1 lies in IPv6's reserved ::/8 but is loopback.
# The "always" ones cannot be a webhook receiver at all, or (link-local) are where cloud
# servers hand out their credentials: no setting opens them.
_RULES = (
    _Rule(
        lambda a: a.is_unspecified or (a.version == 4 and a in _THIS_NETWORK),
        "an unspecified address, which reaches this machine",
        True,
    ),
    _Rule(
        lambda a: a.is_link_local,
        "a link-local address, where cloud servers' metadata services answer",
        True,
    ),
    _Rule(lambda a: a.is_multicast, "a multicast address, where no web server answers", True),
    _Rule(lambda a: a.is_loopback, "a loopback address (this machine)", False),
    _Rule(
        lambda a: any(a in network for network in _PRIVATE) or (a.version == 6 and a.is_site_local),
        "a private network address",
        False,
    ),
    _Rule(lambda a: a.version == 4 and a in _SHARED, "a shared (carrier-grade NAT) address", False),
    _Rule(lambda a: a.is_reserved, "a reserved address, where no web server answers", True),
    _Rule(lambda a: not a.is_global, "a special-purpose address", False),
)


def address_refusal(address: IPAddress, *, is_internal_allowed: bool) -> Refusal | None:
    """Why `address` may not receive webhooks, or None when it may."""
    refusal = _classify(address)
    if refusal is None or (is_internal_allowed and not refusal.is_always):
        return None
    return refusal


def _classify(address: IPAddress) -> Refusal | None:
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        # ::ffff:127.0.0.1 reaches 127.0.0.1: judge the IPv4 address inside.
        inner = _classify(embedded)
        if inner is None:
            return None
        return Refusal(address, f"the IPv6 form of {embedded}, {inner.kind}", inner.is_always)
    for rule in _RULES:
        if rule.applies(address):
            return Refusal(address, rule.kind, rule.is_always)
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to: IPv4-mapped, 6to4 or NAT64."""
    if address.version == 4:
        return None
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


# --- with the lookup -----------------------------------------------------------------------


class TargetRefusedError(ValidationError):
    """The URL's host is, or resolves to, an address webhooks may not go to."""

    code = "webhook_target_refused"


class TargetLookupError(PostroomError):
    """The URL's host name could not be resolved (now: it may resolve later)."""

    code = "webhook_target_lookup"


def system_resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses the system resolver gives for `host`, in its order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # A scoped IPv6 address comes back as "fe80::1%eth0"; the scope is not the address.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def target_addresses(
    host: str, port: int, *, is_internal_allowed: bool, resolve: Resolve = system_resolve
) -> list[IPAddress]:
    """The addresses to connect to for `host`, each one checked; raise if any is refused.

    One internal answer refuses the whole name: a public receiver has no reason to publish
    one, and connecting to the public answers only would still let the name's owner probe
    which internal ones are alive.
    """
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = list(resolve(host, port))
        except (OSError, UnicodeError) as error:
            raise TargetLookupError(f"Could not look up {host}: {error}.", field="url") from None
        if not addresses:
            raise TargetLookupError(f"Could not look up {host}: no address.", field="url")
    for address in addresses:
        refusal = address_refusal(address, is_internal_allowed=is_internal_allowed)
        if refusal is not None:
            raise TargetRefusedError(refusal_message(refusal, host=host), field="url")
    return addresses


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def refusal_message(refusal: Refusal, *, host: str) -> str:
    """The refusal in plain words: which address, what it is, and what to do."""
    address = str(refusal.address)
    subject = f"{address} is" if host.strip("[]") == address else f"{host} resolves to {address},"
    if refusal.is_always:
        return (
            f"{subject} {refusal.kind}: Postroom never posts webhooks there, even with "
            f"“{ALLOW_INTERNAL_LABEL}”. Correct the URL."
        )
    return (
        f"{subject} {refusal.kind}, not an address on the public internet. Postroom posts "
        "webhooks only to public addresses, so that a webhook cannot reach services on its own "
        "machine or network. Use the receiver's public URL, or, if the receiver runs on your "
        f"own network, tick “{ALLOW_INTERNAL_LABEL}”."
    )

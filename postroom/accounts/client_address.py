"""The address a login comes from, for counting failed logins per client (django-axes).

By default it is the connection's address: `postroom run` serves with waitress directly, and
an X-Forwarded-For header is then whatever the client wrote. Behind a reverse proxy every
connection comes from the proxy, so the operator lists it in POSTROOM_TRUSTED_PROXIES and the
address the proxy appended to X-Forwarded-For is believed instead. Only what trusted proxies
appended is believed: the header is read from the right, and the first hop that is not a
trusted proxy is the client (what nginx's `real_ip_recursive on` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

Network = IPv4Network | IPv6Network


def trusted_proxy_networks(values: Iterable[str]) -> list[Network]:
    """Parse POSTROOM_TRUSTED_PROXIES: addresses (`127.0.0.1`) or networks (`10.0.0.0/8`)."""
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ip_network(value, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"POSTROOM_TRUSTED_PROXIES: {value!r} is not an IP address or network. "
                "List your reverse proxies' addresses, such as 127.0.0.1 or 10.0.0.0/8."
            ) from None
    return networks


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


def _is_address(value: str) -> bool:
    try:
        ip_address(value)
    except ValueError:
        return False
    return True


def client_address_from(
    remote_addr: str | None, forwarded_for: str, *, trusted: Sequence[Network]
) -> str | None:
    """Return the client's address from the connection's and the X-Forwarded-For header."""
    if remote_addr is None or not _is_trusted(remote_addr, trusted):
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_address(hop):
            # A proxy that writes something else (a port, a name) cannot be understood:
            # count everyone behind it as one client, which locks too much, never too little.
            return remote_addr
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else remote_addr


def client_address(request: HttpRequest) -> str | None:
    """django-axes' AXES_CLIENT_IP_CALLABLE: the address failed logins are counted against."""
    return client_address_from(
        request.META.get("REMOTE_ADDR") or None,
        request.META.get("HTTP_X_FORWARDED_FOR", ""),
        trusted=trusted_proxy_networks(settings.POSTROOM_TRUSTED_PROXIES),
    )
